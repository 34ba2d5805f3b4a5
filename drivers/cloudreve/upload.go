package cloudreve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"bridge/drivers"
)

type uploadSession struct {
	SessionID  string   `json:"sessionID"`
	ChunkSize  int64    `json:"chunkSize"`
	UploadURLs []string `json:"uploadURLs"`
}

// Put uploads by the policy of the parent folder. Over an existing file it
// uploads under a temporary name first, so the old file survives a failure.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	if err := validName(name); err != nil {
		return drivers.Object{}, err // before any byte goes out
	}
	if up.Replaces == nil {
		return d.upload(ctx, parent, name, up)
	}
	tmp := tempName(name)
	obj, err := d.upload(ctx, parent, tmp, up)
	if err != nil {
		return drivers.Object{}, err
	}
	tmpRef := drivers.Ref{Path: path.Join(parent.Path, tmp), Object: obj}
	old := drivers.Ref{Path: path.Join(parent.Path, name), Object: *up.Replaces}
	if err := d.Remove(ctx, old); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		d.Remove(context.WithoutCancel(ctx), tmpRef)
		return drivers.Object{}, err
	}
	return d.Rename(ctx, tmpRef, name)
}

// policyOf returns the folder's storage policy, from the last listing.
func (d *Driver) policyOf(ctx context.Context, dir string) (policy, error) {
	d.polMu.Lock()
	p, ok := d.policies[clean(dir)]
	d.polMu.Unlock()
	if ok && p.ID != "" {
		return p, nil
	}
	if _, err := d.List(ctx, drivers.Ref{Path: dir}); err != nil {
		return policy{}, err
	}
	d.polMu.Lock()
	defer d.polMu.Unlock()
	return d.policies[clean(dir)], nil
}

func (d *Driver) upload(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(parent.Path, name)
	pol, err := d.policyOf(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("cloudreve: upload %s: %w", p, err)
	}
	modTime := up.ModTime
	if modTime.IsZero() {
		modTime = d.now()
	}
	var s uploadSession
	body := map[string]any{"path": clean(parent.Path), "size": up.Size, "name": name, "policy_id": pol.ID,
		"last_modified": modTime.UnixMilli(), "mime_type": mime.TypeByExtension(path.Ext(name))}
	if err := d.call(ctx, http.MethodPut, "/file/upload", body, nil, &s); err != nil {
		return drivers.Object{}, fmt.Errorf("cloudreve: upload %s: %w", p, err)
	}
	if s.SessionID == "" || (up.Size > 0 && s.ChunkSize <= 0) {
		return drivers.Object{}, fmt.Errorf("cloudreve: upload %s: no session: %w", p, drivers.ErrUnavailable)
	}
	if len(s.UploadURLs) > 0 || pol.Type == "onedrive" {
		err = d.sendOneDrive(ctx, up, s)
	} else {
		err = d.sendLocal(ctx, up, s)
	}
	if err != nil {
		d.cancel(s.SessionID)
		return drivers.Object{}, fmt.Errorf("cloudreve: upload %s: %w", p, err)
	}
	return d.find(ctx, parent.Path, name, false)
}

// sendLocal posts the chunks in order, each exactly chunkSize but the last;
// a 0-byte file posts one empty chunk. The last chunk completes the file.
func (d *Driver) sendLocal(ctx context.Context, up drivers.Upload, s uploadSession) error {
	for i, off := 0, int64(0); off < up.Size || (i == 0 && up.Size == 0); i++ {
		n := min(s.ChunkSize, up.Size-off)
		buf := make([]byte, n)
		if _, err := io.ReadFull(io.NewSectionReader(up.Body, off, n), buf); err != nil {
			return fmt.Errorf("reading chunk %d: %w", i, err)
		}
		if err := d.call(ctx, http.MethodPost, "/file/upload/"+url.PathEscape(s.SessionID)+"/"+strconv.Itoa(i), nil, buf, nil); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		off += n
	}
	return nil
}

// sendOneDrive PUTs byte ranges to the session's upload URL (no cookie:
// the URL is the capability), then asks the server to finish.
func (d *Driver) sendOneDrive(ctx context.Context, up drivers.Upload, s uploadSession) error {
	if len(s.UploadURLs) == 0 {
		return fmt.Errorf("no upload URL: %w", drivers.ErrUnavailable)
	}
	for off := int64(0); off < up.Size; {
		n := min(s.ChunkSize, up.Size-off)
		buf := make([]byte, n)
		if _, err := io.ReadFull(io.NewSectionReader(up.Body, off, n), buf); err != nil {
			return fmt.Errorf("reading range %d: %w", off, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.UploadURLs[0], bytes.NewReader(buf))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, up.Size))
		resp, err := d.client.Do(req)
		if err != nil {
			return fmt.Errorf("range at %d: connection failed: %w", off, drivers.ErrUnavailable)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("range at %d: HTTP %d: %w", off, resp.StatusCode, drivers.ErrUnavailable)
		}
		off += n
	}
	if err := d.call(ctx, http.MethodPost, "/callback/onedrive/finish/"+url.PathEscape(s.SessionID), map[string]any{}, nil, nil); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	return nil
}

// cancel deletes an upload session that will not complete; it runs even
// when the request was cancelled.
func (d *Driver) cancel(sid string) {
	ctx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := d.call(ctx, http.MethodDelete, "/file/upload/"+url.PathEscape(sid), nil, nil, nil); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("cloudreve: cancelling a failed upload")
	}
}
