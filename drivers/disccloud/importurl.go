package disccloud

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// Polling of a URL import: the first wait, the longest one, and how many
// polls at least (more for a large file, counting on 10 MB/s at least).
const (
	importMinPoll  = 250 * time.Millisecond
	importMaxPoll  = 5 * time.Second
	importPolls    = 40
	importPollSize = 50 << 20 // bytes one poll of importMaxPoll stands for
)

// errPending is a URL import still under way.
var errPending = errors.New("the site is still fetching the URL")

// importStatus is /file/url_upload_status's data.
type importStatus struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	File   *struct {
		ID   flex.ID  `json:"file_id"`
		Name string   `json:"name"`
		Size flex.Int `json:"size"`
	} `json:"downloaded_file"`
}

// ImportURL has the site fetch src itself (drivers.URLImporter): the bytes
// never pass through the bridge. It schedules the download, polls its
// status with backoff (bounded: about four minutes, longer for large
// files), checks the size and gives the file its name. A refusal or a
// failed import is ErrNotSupported, so the bridge streams the copy
// instead. A poll that gives up leaves the site's import running; its file
// may show up later under the name the site chose.
func (d *Driver) ImportURL(ctx context.Context, parent drivers.Ref, name string, src drivers.Link, size int64) (drivers.Object, error) {
	p := path.Join(clean(parent.Path), name)
	if err := validName(name); err != nil {
		return drivers.Object{}, err
	}
	if len(src.Header) > 0 {
		return drivers.Object{}, fail("import", p, fmt.Errorf("the link needs request headers the site cannot send: %w", drivers.ErrNotSupported))
	}
	if err := d.checkSize(ctx, size); err != nil {
		return drivers.Object{}, fail("import", p, err)
	}
	dir, err := folderID(parent)
	if err != nil {
		return drivers.Object{}, fail("import", p, err)
	}
	params := url.Values{"file_url_base64": {base64.StdEncoding.EncodeToString([]byte(src.URL))}}
	if dir != "" {
		params.Set("folder_id", dir)
	}
	var added struct {
		ID flex.ID `json:"scheduled_item_id"`
	}
	if err := d.call(ctx, request{path: "file/url_upload_add", params: params, data: &added}); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && !tokenRefused(err) {
			err = fmt.Errorf("%w: %w", err, drivers.ErrNotSupported)
		}
		return drivers.Object{}, fail("import", p, err)
	}
	if added.ID == "" {
		return drivers.Object{}, fail("import", p, errors.New("no scheduled_item_id in the answer"))
	}
	st, err := d.awaitImport(ctx, string(added.ID), size)
	if err != nil {
		if errors.Is(err, errPending) {
			d.log.Warn().Str("path", p).Str("scheduled_item_id", string(added.ID)).Msg("disccloud: gave up waiting for a URL import; the site may still finish it")
		}
		return drivers.Object{}, fail("import", p, err)
	}
	o := drivers.Object{Name: st.File.Name, Size: int64(st.File.Size), ID: "f:" + string(st.File.ID), ModTime: d.now().Truncate(time.Second)}
	ref := drivers.Ref{Path: path.Join(clean(parent.Path), o.Name), Object: o}
	if o.Size != size {
		d.cleanup(ctx, ref)
		return drivers.Object{}, fail("import", p, fmt.Errorf("the site fetched %d bytes, the source has %d: %w", o.Size, size, drivers.ErrUnavailable))
	}
	if o.Name != name {
		if o, err = d.edit(ctx, ref, name, "", false); err != nil {
			d.cleanup(ctx, ref)
			return drivers.Object{}, fail("import", p, err)
		}
	}
	return o, nil
}

// awaitImport polls a scheduled import until it completes or fails.
func (d *Driver) awaitImport(ctx context.Context, id string, size int64) (importStatus, error) {
	var st importStatus
	poller := &pacer.Pacer{Attempts: importPolls + int(size/importPollSize), MinBackoff: importMinPoll,
		MaxBackoff: importMaxPoll, Sleep: d.sleep}
	err := poller.Call(ctx, func(int) (pacer.Retry, error) {
		st = importStatus{}
		if err := d.call(ctx, request{path: "file/url_upload_status", params: url.Values{"scheduled_item_id": {id}}, data: &st}); err != nil {
			return pacer.Retry{}, err
		}
		switch st.Status {
		case "complete", "completed", "finished":
			if st.File == nil || st.File.ID == "" {
				return pacer.Retry{}, errors.New("the import is complete but names no file")
			}
			return pacer.Retry{}, nil
		case "failed", "error", "cancelled", "canceled":
			return pacer.Retry{}, fmt.Errorf("the site could not fetch the URL (%s): %w", st.Error, drivers.ErrNotSupported)
		}
		return pacer.Retry{Again: true}, errPending
	})
	if errors.Is(err, errPending) {
		err = fmt.Errorf("%w: %w", err, drivers.ErrUnavailable)
	}
	return st, err
}
