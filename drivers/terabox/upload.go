package terabox

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/uploads"
)

// Put uploads a finished temp file: precreate with the blocks' md5s
// (dedup: nothing sent), the blocks through superfile2 in parallel, then
// create with rtype 3 once all are in. An overwrite is that one create:
// until it succeeds the old file is untouched.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(parent.Path, name)
	dir, err := d.full(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	parts := uploads.Split(up.Size, blockSize)
	if len(parts) == 0 {
		parts = []uploads.Part{{}} // an empty file is one empty block
	}
	sums, err := d.blockSums(ctx, up, parts)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: upload %s: %w", p, err)
	}
	for attempt := 0; ; attempt++ {
		o, err := d.upload(ctx, parent, name, dir+"/"+name, up, parts, sums)
		if isErrno(err, errnoNoUpload) && attempt == 0 && ctx.Err() == nil {
			continue // the session was forgotten: start over once
		}
		if err != nil {
			return drivers.Object{}, fmt.Errorf("terabox: upload %s: %w", p, err)
		}
		return o, nil
	}
}

// blockSums is the md5 of each block, read by offset; one block's is the
// whole file's, which the upload carries already.
func (d *Driver) blockSums(ctx context.Context, up drivers.Upload, parts []uploads.Part) ([]string, error) {
	sums := make([]string, len(parts))
	if len(parts) == 1 && len(up.Hashes.MD5) == 32 {
		sums[0] = strings.ToLower(up.Hashes.MD5)
		return sums, nil
	}
	err := uploads.Each(ctx, parts, d.opts.UploadConcurrency, func(ctx context.Context, p uploads.Part) error {
		h := md5.New()
		if _, err := io.Copy(h, p.Reader(up.Body)); err != nil {
			return fmt.Errorf("reading block %d: %w", p.Index, err)
		}
		sums[p.Index] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return sums, err
}

// upload runs one precreate, its blocks and create for target (a full
// path).
func (d *Driver) upload(ctx context.Context, parent drivers.Ref, name, target string, up drivers.Upload,
	parts []uploads.Part, sums []string) (drivers.Object, error) {
	blockList, _ := json.Marshal(sums)
	var pc struct {
		ReturnType flex.Int   `json:"return_type"`
		UploadID   string     `json:"uploadid"`
		BlockList  []flex.Int `json:"block_list"`
		Info       *entry     `json:"info"`
	}
	form := url.Values{"path": {target}, "autoinit": {"1"}, "block_list": {string(blockList)},
		"size": {strconv.FormatInt(up.Size, 10)}, "isdir": {"0"}}
	if err := d.do(ctx, request{op: "precreate", method: http.MethodPost, path: "/openapi/api/precreate", form: form}, &pc); err != nil {
		return drivers.Object{}, err
	}
	if pc.ReturnType == 2 { // dedup: the provider has these bytes; the file is made
		if pc.Info == nil {
			return drivers.Object{}, fmt.Errorf("precreate: dedup without info: %w", drivers.ErrUnavailable)
		}
		return d.settle(ctx, parent, name, target, up, *pc.Info)
	}
	if pc.UploadID == "" {
		return drivers.Object{}, fmt.Errorf("precreate: no uploadid: %w", drivers.ErrUnavailable)
	}
	todo := parts
	if len(pc.BlockList) > 0 { // [] means every block ("equivalent to [0]" for one)
		todo = nil
		for _, i := range pc.BlockList {
			if i < 0 || int(i) >= len(parts) {
				return drivers.Object{}, fmt.Errorf("precreate: block %d out of range: %w", i, drivers.ErrUnavailable)
			}
			todo = append(todo, parts[i])
		}
	}
	err := uploads.Each(ctx, todo, d.opts.UploadConcurrency, func(ctx context.Context, p uploads.Part) error {
		return d.sendBlock(ctx, target, pc.UploadID, p, up.Body, sums[p.Index])
	})
	if err != nil {
		return drivers.Object{}, err
	}
	var cr entry
	form = url.Values{"path": {target}, "size": {strconv.FormatInt(up.Size, 10)}, "uploadid": {pc.UploadID},
		"block_list": {string(blockList)}, "rtype": {"3"}, "isdir": {"0"}}
	err = d.do(ctx, request{op: "create", method: http.MethodPost, path: "/openapi/api/create", form: form}, &cr)
	if errors.Is(err, errConnLost) && ctx.Err() == nil {
		// The answer was lost: the file may be made. A file of this size
		// at target that is not the one replaced is ours.
		if e, serr := d.stat(ctx, target); serr == nil && e.IsDir == 0 && int64(e.Size) == up.Size &&
			(up.Replaces == nil || string(e.FsID) != up.Replaces.ID) {
			cr, err = e, nil
		}
	}
	if err != nil {
		return drivers.Object{}, err
	}
	return d.settle(ctx, parent, name, target, up, cr)
}

// settle returns the uploaded file when the provider put it at target.
// When it put it under another name (dedup beside a taken name), an
// overwrite swaps it into place, the old file kept until then; a new file
// whose name was taken meanwhile is ErrExist.
func (d *Driver) settle(ctx context.Context, parent drivers.Ref, name, target string, up drivers.Upload, got entry) (drivers.Object, error) {
	o := got.object()
	o.IsDir, o.Size = false, up.Size
	if o.ID == "" {
		return drivers.Object{}, fmt.Errorf("no fs_id in the answer: %w", drivers.ErrUnavailable)
	}
	if got.Path == "" || got.Path == target {
		o.Name = name
		return o, nil
	}
	if path.Dir(got.Path) != path.Dir(target) {
		return drivers.Object{}, fmt.Errorf("the provider stored the file in another folder: %w", drivers.ErrUnavailable)
	}
	stray := drivers.Ref{Path: path.Join(parent.Path, path.Base(got.Path)), Object: o}
	if up.Replaces == nil {
		d.discard(ctx, stray)
		return drivers.Object{}, fmt.Errorf("the name was taken meanwhile: %w", drivers.ErrExist)
	}
	return uploads.Replace(ctx, d, parent, name, *up.Replaces, func(ctx context.Context, tmp string) (drivers.Object, error) {
		return d.Rename(ctx, stray, tmp)
	}, d.log)
}

// sendBlock posts one block to superfile2 (on the upload domain) and
// checks the md5 it answers; a mismatch sends the block again.
func (d *Driver) sendBlock(ctx context.Context, target, uploadID string, p uploads.Part, body io.ReaderAt, sum string) error {
	head, tail, ctype := multipartFrame("file", path.Base(target))
	q := url.Values{"method": {"upload"}, "app_id": {"250528"}, "path": {target}, "uploadid": {uploadID},
		"partseq": {strconv.Itoa(p.Index)}}
	var ans struct {
		MD5 string `json:"md5"`
	}
	rq := request{op: fmt.Sprintf("superfile2 block %d", p.Index), host: uploadHost, method: http.MethodPost,
		path: "/rest/2.0/pcs/superfile2", query: q, resend: true,
		body: func() (io.Reader, int64, string) {
			return io.MultiReader(bytes.NewReader(head), p.Reader(body), bytes.NewReader(tail)),
				int64(len(head)) + p.Size + int64(len(tail)), ctype
		},
		check: func() error {
			if !strings.EqualFold(ans.MD5, sum) {
				ans.MD5 = ""
				return fmt.Errorf("terabox: block %d: the server received other bytes (md5 differs): %w", p.Index, drivers.ErrUnavailable)
			}
			return nil
		}}
	return d.do(ctx, rq, &ans)
}

// multipartFrame is what goes before and after a file's bytes in a
// multipart/form-data body with one file field, so the bytes can be
// streamed from the temp file with a known length.
func multipartFrame(field, filename string) (head, tail []byte, contentType string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.CreateFormFile(field, filename)
	head = append([]byte(nil), buf.Bytes()...)
	buf.Reset()
	w.Close()
	return head, append([]byte(nil), buf.Bytes()...), w.FormDataContentType()
}
