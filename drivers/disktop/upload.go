package disktop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"

	"golang.org/x/sync/errgroup"

	"bridge/drivers"
)

type precreateAnswer struct {
	Instant    bool   `json:"instant_upload"`
	FileID     int64  `json:"file_id"`
	UploadID   string `json:"upload_id"`
	Endpoint   string `json:"endpoint"`
	ChunkSize  int64  `json:"chunk_size"`
	TotalParts int    `json:"total_parts"`
}

// Put uploads a finished temp file. Over an existing file it uploads under
// a temporary name first, so the old file survives any failure.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
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

// upload runs precreate, the parts and complete for a new name.
func (d *Driver) upload(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(parent.Path, name)
	var pc precreateAnswer
	form := url.Values{"parent_path": {apiPath(parent.Path)}, "name": {name},
		"size": {strconv.FormatInt(up.Size, 10)}, "md5": {up.Hashes.MD5}}
	if err := d.call(ctx, http.MethodPost, d.url("/v1/files/upload/precreate", nil), form, &pc); err != nil {
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: precreate: %w", p, err)
	}
	obj := drivers.Object{Name: name, Size: up.Size, Hashes: drivers.Hashes{MD5: up.Hashes.MD5}}
	if pc.Instant {
		obj.ID = "f" + strconv.FormatInt(pc.FileID, 10)
		return obj, nil // dedup: no byte sent
	}
	if pc.UploadID == "" || pc.Endpoint == "" || (up.Size > 0 && pc.ChunkSize <= 0) {
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: precreate gave no session: %w", p, drivers.ErrUnavailable)
	}
	id, err := d.sendAndComplete(ctx, up, pc)
	if err != nil {
		d.abort(pc)
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: %w", p, err)
	}
	obj.ID = "f" + strconv.FormatInt(id, 10)
	return obj, nil
}

// sendAndComplete sends every part (in parallel), then completes; a 425
// (parts missing) is answered by asking /parts and sending what is missing.
func (d *Driver) sendAndComplete(ctx context.Context, up drivers.Upload, pc precreateAnswer) (int64, error) {
	all := make([]int, pc.TotalParts)
	for i := range all {
		all[i] = i + 1
	}
	missing := all
	for round := 0; ; round++ {
		if err := d.sendParts(ctx, up, pc, missing); err != nil {
			return 0, err
		}
		var done struct {
			FileID int64 `json:"file_id"`
		}
		err := d.call(ctx, http.MethodPost, pc.Endpoint+"/u/"+url.PathEscape(pc.UploadID)+"/complete", url.Values{}, &done)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 425 && round < 2 {
			if missing, err = d.missingParts(ctx, pc); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("complete: %w", err)
		}
		return done.FileID, nil
	}
}

func (d *Driver) missingParts(ctx context.Context, pc precreateAnswer) ([]int, error) {
	var st struct {
		Received []int `json:"received_parts"`
	}
	if err := d.call(ctx, http.MethodGet, pc.Endpoint+"/u/"+url.PathEscape(pc.UploadID)+"/parts", nil, &st); err != nil {
		return nil, fmt.Errorf("parts: %w", err)
	}
	got := map[int]bool{}
	for _, s := range st.Received {
		got[s] = true
	}
	var missing []int
	for seq := 1; seq <= pc.TotalParts; seq++ {
		if !got[seq] {
			missing = append(missing, seq)
		}
	}
	return missing, nil
}

// sendParts posts the given parts, upload_concurrency at a time; each part
// is retried with backoff by call.
func (d *Driver) sendParts(ctx context.Context, up drivers.Upload, pc precreateAnswer, seqs []int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.UploadConcurrency)
	for _, seq := range seqs {
		g.Go(func() error {
			off := int64(seq-1) * pc.ChunkSize
			n := min(pc.ChunkSize, up.Size-off)
			buf := make([]byte, n)
			if _, err := io.ReadFull(io.NewSectionReader(up.Body, off, n), buf); err != nil {
				return fmt.Errorf("reading part %d: %w", seq, err)
			}
			q := url.Values{"upload_id": {pc.UploadID}, "part_seq": {strconv.Itoa(seq)}}
			if err := d.callRaw(gctx, http.MethodPost, pc.Endpoint+"/u?"+q.Encode(), nil, buf, "application/octet-stream", nil); err != nil {
				return fmt.Errorf("part %d: %w", seq, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// abort releases an upload session that will not complete; it runs even
// when the request was cancelled.
func (d *Driver) abort(pc precreateAnswer) {
	ctx := context.Background()
	if err := d.call(ctx, http.MethodPost, pc.Endpoint+"/u/"+url.PathEscape(pc.UploadID)+"/abort", url.Values{}, nil); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("disktop: abort of a failed upload")
	}
}
