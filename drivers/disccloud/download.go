package disccloud

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"bridge/drivers"
)

// Link asks /file/download for a URL with a fresh download_token. Its
// lifetime is not in the answer, so Expires is now: the link serves the
// request at hand. It is not ClientSafe: what the site answers on it (an
// HTML page for a dead token, 200 for bytes=0-N, 429) needs the bridge's
// checks (download.Fetcher and CheckDownload).
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	id, isDir, err := idOf(file)
	if err == nil && (isDir || id == "") {
		err = fmt.Errorf("a folder has no link: %w", drivers.ErrNotFound)
	}
	if err != nil {
		return drivers.Link{}, fail("link", file.Path, err)
	}
	asked := d.now()
	var out struct {
		URL string `json:"download_url"`
	}
	if err := d.call(ctx, request{path: "file/download", params: url.Values{"file_id": {id}}, data: &out}); err != nil {
		return drivers.Link{}, fail("link", file.Path, err)
	}
	u, err := url.Parse(out.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return drivers.Link{}, fail("link", file.Path, fmt.Errorf("no usable download_url in the answer: %w", drivers.ErrUnavailable))
	}
	return drivers.Link{URL: out.URL, Expires: asked}, nil
}

// CheckDownload recognises the site's answer to a dead download_token
// (drivers.LinkChecker): HTTP 200 with an HTML page where the file should
// be. The file itself comes as an attachment (Content-Disposition), which
// the page never does, so an HTML file is still served; an HTML answer
// without it is never taken for content (the bridge asks for a fresh
// link, once).
func (d *Driver) CheckDownload(resp *http.Response, head []byte) error {
	if disp, _, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && disp == "attachment" {
		return nil
	}
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ctype == "text/html" || ctype == "application/xhtml+xml" {
		return fmt.Errorf("the link answered an HTML page (%s) instead of the file: the download token is dead", ctype)
	}
	if len(head) > 0 && strings.HasPrefix(http.DetectContentType(head), "text/html") {
		return fmt.Errorf("the link answered something that reads as an HTML page instead of the file")
	}
	return nil
}
