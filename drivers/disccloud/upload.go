package disccloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"path"
	"strings"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/uploads"
)

// multipartFile is a file sent as the upload_file field of a multipart
// body, read from its temp file as the body is sent (never held in
// memory), with a Content-Length known in advance.
type multipartFile struct {
	name string
	data io.ReaderAt
	size int64
}

// body returns the content type, the length and a fresh reader of the
// whole multipart body: the fields, then the file's part.
func (m *multipartFile) body(fields [][2]string) (string, int64, io.Reader) {
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	for _, f := range fields {
		w.WriteField(f[0], f[1])
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="upload_file"; filename="%s"`, escapeQuotes(m.name)))
	h.Set("Content-Type", "application/octet-stream")
	w.CreatePart(h)
	pre := bytes.Clone(head.Bytes())
	head.Reset()
	w.Close() // the closing boundary
	post := bytes.Clone(head.Bytes())
	length := int64(len(pre)) + m.size + int64(len(post))
	return w.FormDataContentType(), length,
		io.MultiReader(bytes.NewReader(pre), io.NewSectionReader(m.data, 0, m.size), bytes.NewReader(post))
}

// escapeQuotes is what multipart.CreateFormFile does to a file name.
func escapeQuotes(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// uploadAnswer is one entry of /file/upload's data.
type uploadAnswer struct {
	Name   string   `json:"name"`
	Size   flex.Int `json:"size"`
	FileID flex.ID  `json:"file_id"`
	Error  string   `json:"error"`
}

// Put uploads up as name in parent. An overwrite uploads under a temporary
// name and swaps (uploads.Replace), so the old file survives a failure and
// the site's renaming never leaves "a (2).txt" behind.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	p := path.Join(clean(parent.Path), name)
	if err := validName(name); err != nil {
		return drivers.Object{}, err
	}
	if err := d.checkSize(ctx, up.Size); err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	dir, err := folderID(parent)
	if err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	if up.Replaces != nil {
		o, err := d.replace(ctx, parent, name, *up.Replaces, func(ctx context.Context, tmp string) (drivers.Object, error) {
			return d.upload(ctx, dir, tmp, up)
		})
		if err != nil {
			return drivers.Object{}, fail("upload", p, err)
		}
		return o, nil
	}
	o, err := d.upload(ctx, dir, name, up)
	if err != nil {
		return drivers.Object{}, fail("upload", p, err)
	}
	if o.Name != name {
		// The name was taken (the site renamed the upload "a (2).txt") or
		// the site altered it: give the upload the name asked for.
		if o, err = d.settle(ctx, parent, name, o); err != nil {
			return drivers.Object{}, fail("upload", p, err)
		}
	}
	return o, nil
}

// checkSize refuses what the site would: 0 bytes, or more than the
// package allows (known from /account/package), before a byte is sent.
func (d *Driver) checkSize(ctx context.Context, size int64) error {
	if size == 0 {
		return fmt.Errorf("the site refuses empty files: %w", drivers.ErrNotSupported)
	}
	p, err := d.packageLimits(ctx)
	if err != nil {
		d.log.Debug().Str("error", classify(err).Error()).Msg("disccloud: package limits unknown; uploading anyway")
		return nil
	}
	if p.maxUpload > 0 && size > p.maxUpload {
		return fmt.Errorf("%d bytes, the account's package takes %d: %w", size, p.maxUpload, drivers.ErrTooLarge)
	}
	return nil
}

// upload sends up as a new file named name into the folder dir ("": the
// root) and returns it as the site answered (maybe under another name).
func (d *Driver) upload(ctx context.Context, dir, name string, up drivers.Upload) (drivers.Object, error) {
	params := url.Values{}
	if dir != "" {
		params.Set("folder_id", dir)
	}
	var out []uploadAnswer
	rq := request{path: "file/upload", params: params, data: &out,
		upload: &multipartFile{name: name, data: up.Body, size: up.Size}}
	if err := d.call(ctx, rq); err != nil {
		return drivers.Object{}, err
	}
	if len(out) == 0 || out[0].FileID == "" {
		if len(out) > 0 && out[0].Error != "" {
			return drivers.Object{}, &apiError{Msg: out[0].Error}
		}
		return drivers.Object{}, errors.New("no file in the upload's answer")
	}
	o := drivers.Object{Name: out[0].Name, Size: int64(out[0].Size), ID: "f:" + string(out[0].FileID), ModTime: d.now().Truncate(1e9)}
	if o.Size != up.Size {
		d.cleanup(ctx, drivers.Ref{Path: path.Join("/", o.Name), Object: o})
		return drivers.Object{}, fmt.Errorf("the site stored %d bytes of %d: %w", o.Size, up.Size, drivers.ErrUnavailable)
	}
	if o.Name == "" {
		o.Name = name
	}
	return o, nil
}

// settle gives got, an upload the site stored under another name, the
// name asked for. A file of that name the bridge did not know of is
// replaced (as an overwrite); a folder of that name is ErrExist.
func (d *Driver) settle(ctx context.Context, parent drivers.Ref, name string, got drivers.Object) (drivers.Object, error) {
	gotRef := drivers.Ref{Path: path.Join(clean(parent.Path), got.Name), Object: got}
	objs, err := d.list(ctx, parent)
	if err != nil {
		d.cleanup(ctx, gotRef)
		return drivers.Object{}, err
	}
	for _, o := range objs {
		switch {
		case o.Name != name || o.ID == got.ID:
		case o.IsDir:
			d.cleanup(ctx, gotRef)
			return drivers.Object{}, fmt.Errorf("a folder has that name: %w", drivers.ErrExist)
		default:
			return d.replace(ctx, parent, name, o, func(context.Context, string) (drivers.Object, error) { return got, nil })
		}
	}
	o, err := d.edit(ctx, gotRef, name, "", false)
	if err != nil {
		d.cleanup(ctx, gotRef)
		return drivers.Object{}, err
	}
	return o, nil
}

// replace is uploads.Replace with this site's quirks: the temporary name
// loses its leading dot (an upload would lose it anyway), and the swap's
// renames go straight to /file/edit (the aside name starts with a dot,
// which is fine for edit but refused by Rename's rule for uploads).
func (d *Driver) replace(ctx context.Context, parent drivers.Ref, name string, old drivers.Object,
	upload func(ctx context.Context, tmp string) (drivers.Object, error)) (drivers.Object, error) {
	return uploads.Replace(ctx, swapper{d}, parent, name, old, func(ctx context.Context, tmp string) (drivers.Object, error) {
		return upload(ctx, strings.TrimLeft(tmp, "."))
	}, d.log)
}

// swapper renames and removes by id without the name rule.
type swapper struct{ d *Driver }

func (s swapper) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	o, err := s.d.edit(ctx, obj, newName, "", false)
	return o, classify(err)
}

func (s swapper) Remove(ctx context.Context, obj drivers.Ref) error {
	return classify(s.d.remove(ctx, obj))
}
