package disktop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/uploads"
)

type precreateAnswer struct {
	Instant    bool     `json:"instant_upload"`
	FileID     flex.ID  `json:"file_id"`
	UploadID   string   `json:"upload_id"`
	Endpoint   string   `json:"endpoint"`
	ChunkSize  flex.Int `json:"chunk_size"`
	TotalParts flex.Int `json:"total_parts"`
}

// Put uploads a finished temp file.
//
// precreate refuses a taken name, so over an existing file the new one is
// uploaded under a temporary name and swapped in (uploads.Replace): the
// name keeps the old file or the new one, never nothing, and a failed
// upload leaves no object behind.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	if up.Replaces == nil {
		return d.upload(ctx, parent, name, up)
	}
	obj, err := uploads.Replace(ctx, d, parent, name, *up.Replaces, func(ctx context.Context, tmp string) (drivers.Object, error) {
		return d.upload(ctx, parent, tmp, up)
	}, d.log)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("disktop: overwrite %s: %w", path.Join(parent.Path, name), err)
	}
	return obj, nil
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
		if pc.FileID == "" {
			return d.find(ctx, parent, name, false)
		}
		obj.ID = "f" + string(pc.FileID)
		return obj, nil // dedup: no byte sent
	}
	if pc.UploadID == "" || pc.Endpoint == "" || (up.Size > 0 && pc.ChunkSize <= 0) {
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: precreate gave no session: %w", p, drivers.ErrUnavailable)
	}
	if want := (up.Size + int64(pc.ChunkSize) - 1) / max(int64(pc.ChunkSize), 1); pc.TotalParts == 0 {
		pc.TotalParts = flex.Int(want) // tolerated: computed from chunk_size
	} else if int64(pc.TotalParts) != want {
		d.abort(pc)
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: precreate's total_parts %d does not match chunk_size: %w",
			p, pc.TotalParts, drivers.ErrUnavailable)
	}
	id, err := d.sendAndComplete(ctx, up, pc)
	if (errors.Is(err, errConnLost) || errors.Is(err, drivers.ErrNotFound)) && ctx.Err() == nil {
		// complete's answer was lost, or a retried complete found its
		// session gone: it may have worked. Look before aborting, or a
		// finished file would be reported as failed.
		if o, ferr := d.find(ctx, parent, name, false); ferr == nil && o.Hashes.MD5 == up.Hashes.MD5 && o.Size == up.Size {
			return o, nil
		}
	}
	if err != nil {
		d.abort(pc)
		return drivers.Object{}, fmt.Errorf("disktop: upload %s: %w", p, err)
	}
	if id == "" {
		return d.find(ctx, parent, name, false)
	}
	obj.ID = "f" + string(id)
	return obj, nil
}

// sendAndComplete sends every part (in parallel), then completes; a 425
// (parts missing) is answered by asking /parts and sending what is missing.
func (d *Driver) sendAndComplete(ctx context.Context, up drivers.Upload, pc precreateAnswer) (flex.ID, error) {
	all := make([]int, int(pc.TotalParts))
	for i := range all {
		all[i] = i + 1
	}
	missing := all
	for round := 0; ; round++ {
		if err := d.sendParts(ctx, up, pc, missing); err != nil {
			return "", err
		}
		var done struct {
			FileID flex.ID `json:"file_id"`
		}
		err := d.call(ctx, http.MethodPost, pc.Endpoint+"/u/"+url.PathEscape(pc.UploadID)+"/complete", url.Values{}, &done)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 425 && round < 2 {
			if missing, err = d.missingParts(ctx, pc); err != nil {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("complete: %w", err)
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
	for seq := 1; seq <= int(pc.TotalParts); seq++ {
		if !got[seq] {
			missing = append(missing, seq)
		}
	}
	return missing, nil
}

// sendParts posts the given parts, upload_concurrency at a time; each part
// is read from the temp file as it is sent (no part is held in memory) and
// retried with backoff by call.
func (d *Driver) sendParts(ctx context.Context, up drivers.Upload, pc precreateAnswer, seqs []int) error {
	all := uploads.Split(up.Size, int64(pc.ChunkSize))
	parts := make([]uploads.Part, 0, len(seqs))
	for _, seq := range seqs {
		if seq < 1 || seq > len(all) {
			return fmt.Errorf("part %d of %d: %w", seq, len(all), drivers.ErrUnavailable)
		}
		parts = append(parts, all[seq-1])
	}
	return uploads.Each(ctx, parts, d.opts.UploadConcurrency, func(ctx context.Context, p uploads.Part) error {
		seq := p.Index + 1
		q := url.Values{"upload_id": {pc.UploadID}, "part_seq": {strconv.Itoa(seq)}}
		if err := d.callRaw(ctx, http.MethodPost, pc.Endpoint+"/u?"+q.Encode(), nil, p.Reader(up.Body), "application/octet-stream", nil); err != nil {
			return fmt.Errorf("part %d: %w", seq, err)
		}
		return nil
	})
}

// abort releases an upload session that will not complete; it runs even
// when the request was cancelled.
func (d *Driver) abort(pc precreateAnswer) {
	ctx := context.Background()
	if err := d.call(ctx, http.MethodPost, pc.Endpoint+"/u/"+url.PathEscape(pc.UploadID)+"/abort", url.Values{}, nil); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("disktop: abort of a failed upload")
	}
}
