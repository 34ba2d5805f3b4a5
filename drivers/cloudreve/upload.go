package cloudreve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

// uploadSession is the answer of PUT /file/upload.
type uploadSession struct {
	SessionID  string   `json:"sessionID"`
	ChunkSize  int64    `json:"chunkSize"`
	UploadURLs []string `json:"uploadURLs"`
}

// Put uploads by the storage policy of the parent folder. The server
// refuses an existing name, so an overwrite uploads under a temporary name
// and then swaps: the old file is renamed aside, the new one takes the
// name, the old one is deleted. The old file survives every failure before
// the swap, and a failed swap puts it back.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(clean(parent.Path), name)
	if err := validName(name); err != nil {
		return drivers.Object{}, err // before any byte goes out
	}
	pol, err := d.policyOf(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	if pol.MaxSize > 0 && up.Size > pol.MaxSize {
		return drivers.Object{}, fail("upload", p, fmt.Errorf("%d bytes, the folder's policy takes %d: %w", up.Size, pol.MaxSize, drivers.ErrTooLarge))
	}
	if up.Replaces == nil {
		o, err := d.upload(ctx, parent.Path, name, up)
		switch {
		case isCode(err, 40054):
			// An upload session of a crashed upload holds the name until it
			// expires: go around it through a temporary name.
		case errors.Is(err, drivers.ErrExist):
			// The bridge did not know of the file: replace the one listed.
			old, ferr := d.find(ctx, parent.Path, name, false)
			if ferr != nil {
				return drivers.Object{}, err
			}
			up.Replaces = &old
		default:
			return o, err
		}
	}
	tmp := tempName(name, "upload")
	obj, err := d.upload(ctx, parent.Path, tmp, up)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.swap(ctx, parent.Path, drivers.Ref{Path: path.Join(clean(parent.Path), tmp), Object: obj}, up.Replaces, name); err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	obj.Name, obj.ModTime = name, d.now()
	return obj, nil
}

// swap gives the uploaded file tmp the name of old (which it replaces;
// nil when there is none).
func (d *Driver) swap(ctx context.Context, dir string, tmp drivers.Ref, old *drivers.Object, name string) error {
	var oldRef drivers.Ref
	aside := ""
	if old != nil {
		oldRef = drivers.Ref{Path: path.Join(clean(dir), name), Object: *old}
		aside = tempName(name, "old")
		err := d.rename(ctx, oldRef, aside)
		if errors.Is(classify(err), drivers.ErrNotFound) {
			// The bridge's old file is gone; another may have taken the name
			// since, and is the one replaced.
			cur, ferr := d.find(ctx, dir, name, false)
			switch {
			case ferr == nil && cur.ID != old.ID:
				oldRef.Object, old = cur, &cur
				err = d.rename(ctx, oldRef, aside)
			case errors.Is(ferr, drivers.ErrNotFound):
				aside, err = "", nil // nothing to keep
			}
		}
		if err != nil {
			d.cleanup(ctx, tmp)
			return err
		}
	}
	if err := d.rename(ctx, tmp, name); err != nil {
		if aside != "" {
			oldRef.Path, oldRef.Name = path.Join(clean(dir), aside), aside
			if rerr := d.rename(context.WithoutCancel(ctx), oldRef, name); rerr != nil {
				d.log.Error().Str("path", oldRef.Path).Str("error", classify(rerr).Error()).Msg("cloudreve: an overwritten file could not be put back; it is kept under this name")
			}
		}
		d.cleanup(ctx, tmp)
		return err
	}
	if aside != "" {
		d.cleanup(ctx, drivers.Ref{Path: path.Join(clean(dir), aside), Object: *old})
	}
	return nil
}

// policyOf returns the folder's storage policy, from the last listing.
func (d *Driver) policyOf(ctx context.Context, dir string) (policy, error) {
	d.polMu.Lock()
	p, ok := d.policies[clean(dir)]
	d.polMu.Unlock()
	if ok && p.ID != "" {
		return p, nil
	}
	return d.freshPolicy(ctx, dir)
}

func (d *Driver) freshPolicy(ctx context.Context, dir string) (policy, error) {
	if _, err := d.list(ctx, dir); err != nil {
		return policy{}, err
	}
	d.polMu.Lock()
	defer d.polMu.Unlock()
	p := d.policies[clean(dir)]
	if p.ID == "" {
		return policy{}, fmt.Errorf("the folder's listing names no storage policy: %w", drivers.ErrUnavailable)
	}
	return p, nil
}

// upload sends up as the new file name of dir and returns it as listed.
// A session that does not complete is deleted.
func (d *Driver) upload(ctx context.Context, dir, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(clean(dir), name)
	pol, err := d.policyOf(ctx, dir)
	if err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	s, err := d.createSession(ctx, dir, name, up, pol)
	if isCode(err, 40035) {
		// The cached policy is stale (the folder was moved or changed).
		if pol, err = d.freshPolicy(ctx, dir); err == nil {
			s, err = d.createSession(ctx, dir, name, up, pol)
		}
	}
	if err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	switch {
	case pol.Type == "onedrive" || len(s.UploadURLs) > 0:
		err = d.sendOneDrive(ctx, up, s)
	default:
		err = d.sendLocal(ctx, up, s)
	}
	if err != nil {
		d.cancel(ctx, s.SessionID)
		return drivers.Object{}, fail("upload", p, err)
	}
	// The server's answer carries no id; it is looked up when first
	// needed (lazyID), so an upload costs the same whatever the folder holds.
	modTime := up.ModTime
	if modTime.IsZero() {
		modTime = d.now()
	}
	return drivers.Object{Name: name, Size: up.Size, ModTime: modTime, ID: lazyID(p)}, nil
}

func (d *Driver) createSession(ctx context.Context, dir, name string, up drivers.Upload, pol policy) (uploadSession, error) {
	if pol.Type != "" && pol.Type != "local" && pol.Type != "onedrive" {
		return uploadSession{}, fmt.Errorf("storage policy %q: %w", pol.Type, drivers.ErrNotSupported)
	}
	modTime := up.ModTime
	if modTime.IsZero() {
		modTime = d.now()
	}
	var s uploadSession
	body := map[string]any{"path": clean(dir), "size": up.Size, "name": name, "policy_id": pol.ID,
		"last_modified": modTime.UnixMilli(), "mime_type": mime.TypeByExtension(path.Ext(name))}
	if err := d.call(ctx, request{method: http.MethodPut, path: "/file/upload", json: body, out: &s}); err != nil {
		return s, err
	}
	if s.SessionID == "" || (up.Size > 0 && s.ChunkSize <= 0) {
		return s, fmt.Errorf("no upload session in the answer: %w", drivers.ErrUnavailable)
	}
	return s, nil
}

// sendLocal posts the chunks in order, each exactly chunkSize but the last;
// a 0-byte file posts one empty chunk. The last chunk completes the file.
func (d *Driver) sendLocal(ctx context.Context, up drivers.Upload, s uploadSession) error {
	for i, off := 0, int64(0); i == 0 || off < up.Size; i++ {
		n := min(s.ChunkSize, up.Size-off)
		rq := request{method: http.MethodPost, path: "/file/upload/" + url.PathEscape(s.SessionID) + "/" + itoa(i),
			raw: io.NewSectionReader(up.Body, off, n)}
		if err := d.call(ctx, rq); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		off += n
	}
	return nil
}

// sendOneDrive PUTs byte ranges to the session's upload URL (without the
// cookie: it is another host, and the URL is the capability), then asks
// the server to finish.
func (d *Driver) sendOneDrive(ctx context.Context, up drivers.Upload, s uploadSession) error {
	if len(s.UploadURLs) == 0 {
		return fmt.Errorf("no upload URL in the answer: %w", drivers.ErrUnavailable)
	}
	target := s.UploadURLs[0]
	for off := int64(0); off < up.Size; {
		n := min(s.ChunkSize, up.Size-off)
		// A failed range is retried through the pacer (backoff, Retry-After),
		// and never blindly: the URL may have taken all, part or none of it
		// (a cut answer), so each retry asks it where to go on.
		var last error
		err := d.retrier().Call(ctx, func(attempt int) (pacer.Retry, error) {
			if attempt > 1 {
				next, serr := d.oneDriveNext(ctx, target)
				if serr != nil {
					if r := retryOf(serr, true); r.Again {
						return r, serr
					}
					return pacer.Retry{}, last
				}
				if next < 0 || next > up.Size {
					return pacer.Retry{}, last
				}
				d.log.Info().Int64("offset", off).Int64("resume", next).Msg("cloudreve: a OneDrive range failed; resuming")
				if off, n = next, min(s.ChunkSize, up.Size-next); n == 0 {
					return pacer.Retry{}, nil // the lost answer was the last range's
				}
			}
			last = d.putRange(ctx, target, up, off, n)
			return rangeRetry(last), last
		})
		if err != nil {
			return err
		}
		off += n
	}
	rq := request{method: http.MethodPost, path: "/callback/onedrive/finish/" + url.PathEscape(s.SessionID), json: map[string]any{}}
	if err := d.call(ctx, rq); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	return nil
}

// rangeRetry tells the pacer whether a failed range may be tried again (it
// resumes where the URL says): a cut, a passing status, or 416 (the URL
// expects another offset).
func rangeRetry(err error) pacer.Retry {
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusRequestedRangeNotSatisfiable {
		return pacer.Retry{Again: true}
	}
	return retryOf(err, true)
}

// putRange sends bytes [off, off+n) of up.
func (d *Driver) putRange(ctx context.Context, target string, up drivers.Upload, off, n int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, nil)
	if err != nil {
		return errors.New("the upload URL is not a URL")
	}
	req.Body, req.ContentLength = io.NopCloser(io.NewSectionReader(up.Body, off, n)), n
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, up.Size))
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("range at %d: %w", off, transportErr(ctx, err))
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return fmt.Errorf("range at %d: %w", off, transportErr(ctx, err))
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("range at %d: %w", off, &httpError{Status: resp.StatusCode, RetryAfter: pacer.RetryAfter(resp)})
	}
	return nil
}

// oneDriveNext asks the upload URL for the first byte it still expects
// (Graph's nextExpectedRanges, "start-" or "start-end").
func (d *Driver) oneDriveNext(ctx context.Context, target string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, transportErr(ctx, err)
	}
	defer resp.Body.Close()
	var st struct {
		NextExpectedRanges []string `json:"nextExpectedRanges"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &httpError{Status: resp.StatusCode, RetryAfter: pacer.RetryAfter(resp)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil || len(st.NextExpectedRanges) == 0 {
		return 0, errors.New("no nextExpectedRanges in the upload status")
	}
	start, _, _ := strings.Cut(st.NextExpectedRanges[0], "-")
	return strconv.ParseInt(start, 10, 64)
}

// cancel deletes an upload session that will not complete; it runs even
// when the request was cancelled.
func (d *Driver) cancel(ctx context.Context, sid string) {
	ctx, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer done()
	if err := d.call(ctx, request{method: http.MethodDelete, path: "/file/upload/" + url.PathEscape(sid)}); err != nil {
		d.log.Warn().Str("error", classify(err).Error()).Msg("cloudreve: a failed upload's session could not be deleted")
	}
}
