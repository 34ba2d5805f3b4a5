package gokuai

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
	"bridge/drivers/uploads"
)

const (
	// finishPolls bounds the upload_finish polls while the server merges
	// (202); with the pacer's backoff (200 ms doubling to 5 s) that is
	// about two minutes.
	finishPolls = 30
	// maxResumes bounds the resumes of one upload (409 offsets, lost
	// answers, finish finding bytes missing).
	maxResumes = 8
	// maxSessions bounds the upload sessions of one upload (a server
	// restart forgets them).
	maxSessions = 3
)

// createAnswer is create_file's answer.
type createAnswer struct {
	State    flex.Int `json:"state"`
	Hash     flex.ID  `json:"hash"`
	Fullpath flex.ID  `json:"fullpath"`
	Server   flex.ID  `json:"server"`
}

// doneAnswer is upload_finish's (and a finished upload_init's) answer.
type doneAnswer struct {
	Hash     flex.ID  `json:"hash"`
	Fullpath flex.ID  `json:"fullpath"`
	Filehash flex.ID  `json:"filehash"`
	Filesize flex.Int `json:"filesize"`
}

// Put stores up as name in parent. create_file with the sha1 first: a
// known content is stored at once (state 1, no byte sent); otherwise the
// chunked protocol sends it. overwrite=1 always: the new content replaces
// the old file only when upload_finish commits it, so an overwrite that
// fails leaves the old file as it was (and no partial object: the
// session is aborted).
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	l, err := d.locate(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: upload %s in %s: %w", name, parent.Path, err)
	}
	if l.top {
		return drivers.Object{}, errRoot("upload " + name)
	}
	full := joinFull(l.full, name)
	sum := strings.ToLower(up.Hashes.SHA1)
	if !isSHA1(sum) {
		if sum, err = sha1Of(up); err != nil {
			return drivers.Object{}, fmt.Errorf("gokuai: upload %s: %w", full, err)
		}
	}
	var cf createAnswer
	p := mountParams(l, full)
	p.Set("overwrite", "1")
	extra := url.Values{"filehash": {sum}, "filesize": {strconv.FormatInt(up.Size, 10)}}
	// Sent again after a lost answer: with overwrite=1 a second
	// create_file changes nothing the first did not.
	if err := d.call(ctx, request{method: http.MethodPost, path: "/m-api/2/file/create_file", params: p, extra: extra, out: &cf, resend: true}); err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: upload %s: create_file: %w", full, err)
	}
	obj := drivers.Object{Name: name, Size: up.Size, ModTime: d.now().Truncate(time.Second), Hashes: drivers.Hashes{SHA1: sum}}
	if cf.State == 1 {
		if cf.Fullpath != "" && string(cf.Fullpath) != full {
			d.discard(ctx, l, string(cf.Fullpath))
			return drivers.Object{}, fmt.Errorf("gokuai: upload %s: the server stored it as %s despite overwrite=1: %w", full, cf.Fullpath, drivers.ErrUnavailable)
		}
		if cf.Hash == "" {
			return d.info(ctx, l, full)
		}
		obj.ID = objectID(l.lib.MountID, string(cf.Hash), false, sum)
		return obj, nil // dedup: no byte sent
	}
	u := &upload{d: d, l: l, full: full, name: name, up: up, sum: sum, pathhash: string(cf.Hash), servers: servers(string(cf.Server))}
	if u.pathhash == "" || len(u.servers) == 0 {
		return drivers.Object{}, fmt.Errorf("gokuai: upload %s: create_file gave no upload server: %w", full, drivers.ErrUnavailable)
	}
	done, err := u.run(ctx)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: upload %s: %w", full, err)
	}
	if done.Fullpath != "" && string(done.Fullpath) != full {
		d.discard(ctx, l, string(done.Fullpath))
		return drivers.Object{}, fmt.Errorf("gokuai: upload %s: the server stored it as %s despite overwrite=1: %w", full, done.Fullpath, drivers.ErrUnavailable)
	}
	if done.Hash == "" {
		return d.info(ctx, l, full)
	}
	obj.ID = objectID(l.lib.MountID, string(done.Hash), false, sum)
	return obj, nil
}

// sha1Of hashes an upload whose sha1 was not given (the bridge gives it).
func sha1Of(up drivers.Upload) (string, error) {
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(up.Body, 0, up.Size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// servers reads create_file's server: maybe several, comma-separated,
// maybe without a scheme (then http).
func servers(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSuffix(strings.TrimSpace(part), "/")
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		out = append(out, part)
	}
	return out
}

// upload is one run of the chunked protocol.
type upload struct {
	d        *Driver
	l        loc
	full     string
	name     string
	up       drivers.Upload
	sum      string
	pathhash string
	servers  []string
	server   string // the one in use
	session  string
}

// errMerging is upload_finish's 202: the server is still merging.
var errMerging = fmt.Errorf("the server is still merging the parts: %w", drivers.ErrUnavailable)

// run sends the content and finishes: upload_init (a new session when
// the server forgot the old one), the parts from where the server is,
// upload_finish polled while 202. On failure the session is aborted.
func (u *upload) run(ctx context.Context) (doneAnswer, error) {
	var lastErr error
	for s := 0; s < maxSessions; s++ {
		done, finished, err := u.init(ctx)
		if err != nil {
			return doneAnswer{}, err
		}
		if finished {
			return done, nil
		}
		done, err = u.sendAndFinish(ctx)
		if err == nil {
			return done, nil
		}
		lastErr = err
		if errors.Is(err, errConnLost) || isNotFound(err) {
			// The finish may have happened before its answer was lost
			// (or before the server restarted): look before giving up.
			if o, ierr := u.d.info(ctx, u.l, u.full); ierr == nil && o.Hashes.SHA1 == u.sum && o.Size == u.up.Size {
				return doneAnswer{Hash: flex.ID(hashOf(o.ID)), Fullpath: flex.ID(u.full)}, nil
			}
		}
		if !isNotFound(err) || ctx.Err() != nil {
			break // only a forgotten session is worth a new one
		}
	}
	u.abort()
	return doneAnswer{}, lastErr
}

// hashOf is the hash part of an object ID "<mount>:<hash>[:<filehash>]".
func hashOf(id string) string {
	parts := strings.Split(id, ":")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// upCall is one call of the upload server (token in x-gk-token), through
// the driver's pacer and token refresh. body, when set, is rewound for
// each attempt. It returns the HTTP status (200 or 202) and the body.
func (u *upload) upCall(ctx context.Context, what, method string, hdr http.Header, body *io.SectionReader, resend bool) (int, []byte, error) {
	var status int
	var answer []byte
	err := u.d.do(ctx, what, resend, func(access string) error {
		var rd io.Reader
		if body != nil {
			if _, err := body.Seek(0, io.SeekStart); err != nil {
				return err
			}
			rd = body
		}
		req, err := http.NewRequestWithContext(ctx, method, u.server+"/"+what, rd)
		if err != nil {
			return err
		}
		if body != nil {
			req.ContentLength = body.Size()
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("x-gk-token", access)
		resp, err := u.d.client.Do(req)
		if err != nil {
			return errConnLost
		}
		status = resp.StatusCode
		answer, err = readAnswer(resp, true)
		return err
	})
	return status, answer, err
}

func (u *upload) sessionHeader() http.Header {
	return http.Header{"X-Gk-Upload-Session": {u.session}}
}

// init opens (or, for a pathhash with an open session, resumes) a
// session, on the first upload server that answers. finished reports an
// upload the server already has (202).
func (u *upload) init(ctx context.Context) (doneAnswer, bool, error) {
	hdr := http.Header{
		"X-Gk-Upload-Pathhash": {u.pathhash},
		"X-Gk-Upload-Filename": {url.QueryEscape(u.name)},
		"X-Gk-Upload-Filehash": {u.sum},
		"X-Gk-Upload-Filesize": {strconv.FormatInt(u.up.Size, 10)},
		"X-Gk-Upload-Mountid":  {strconv.Itoa(u.l.lib.MountID)},
	}
	var err error
	for _, srv := range u.servers {
		u.server = srv
		var status int
		var b []byte
		status, b, err = u.upCall(ctx, "upload_init", http.MethodPost, hdr, nil, true)
		if errors.Is(err, errConnLost) && ctx.Err() == nil {
			continue // the next server, if there is one
		}
		if err != nil {
			return doneAnswer{}, false, fmt.Errorf("upload_init: %w", err)
		}
		if status == http.StatusAccepted {
			var done doneAnswer
			json.Unmarshal(b, &done)
			return done, true, nil
		}
		var a struct {
			Session flex.ID `json:"session"`
		}
		if err := json.Unmarshal(b, &a); err != nil || a.Session == "" {
			return doneAnswer{}, false, fmt.Errorf("upload_init gave no session: %w", drivers.ErrUnavailable)
		}
		u.session = string(a.Session)
		return doneAnswer{}, false, nil
	}
	return doneAnswer{}, false, fmt.Errorf("upload_init: %w", err)
}

// sendAndFinish sends the parts from offset 0 (the server says where to
// go on: a 409's expect, upload_req after a lost answer), then finishes.
func (u *upload) sendAndFinish(ctx context.Context) (doneAnswer, error) {
	off := int64(0)
	for resumes := 0; ; {
		var err error
		if off, err = u.sendFrom(ctx, off, &resumes); err != nil {
			return doneAnswer{}, err
		}
		done, err := u.finish(ctx)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.hasExp && resumes < maxResumes {
			resumes++
			if off, err = u.offset(int64(ae.Expect)); err != nil {
				return doneAnswer{}, err
			}
			continue // bytes are missing: send them
		}
		return done, err
	}
}

// sendFrom sends the content from off to its end, one part at a time
// (the server takes them in order only). It returns the offset reached:
// the size, or less when the server said the upload is complete.
func (u *upload) sendFrom(ctx context.Context, off int64, resumes *int) (int64, error) {
	size, chunk := u.up.Size, u.d.opts.ChunkSize
	for off < size {
		part := uploads.Part{Offset: off, Size: min(chunk, size-off)}
		crc := crc32.NewIEEE()
		if _, err := io.Copy(crc, part.Reader(u.up.Body)); err != nil {
			return off, fmt.Errorf("reading the upload at %d: %w", off, err)
		}
		hdr := u.sessionHeader()
		hdr.Set("X-Gk-Upload-Range", fmt.Sprintf("%d-%d", part.Offset, part.End()-1))
		hdr.Set("X-Gk-Upload-Crc", strconv.FormatUint(uint64(crc.Sum32()), 10))
		status, _, err := u.upCall(ctx, "upload_part", http.MethodPut, hdr, part.Reader(u.up.Body), false)
		var ae *apiError
		switch {
		case err == nil && status == http.StatusAccepted:
			return size, nil // the server has it all
		case err == nil:
			off = part.End()
			continue
		case *resumes >= maxResumes:
			return off, fmt.Errorf("upload_part: gave up after %d resumes: %w", *resumes, err)
		case errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.hasExp:
			*resumes++
			if off, err = u.offset(int64(ae.Expect)); err != nil {
				return off, err
			}
		case errors.Is(err, errConnLost) && ctx.Err() == nil:
			// The part may or may not have arrived: ask.
			*resumes++
			got, rerr := u.received(ctx)
			if rerr != nil {
				return off, rerr
			}
			if off, err = u.offset(got); err != nil {
				return off, err
			}
		default:
			return off, fmt.Errorf("upload_part at %d: %w", off, err)
		}
	}
	return off, nil
}

// offset checks an offset the server gave.
func (u *upload) offset(n int64) (int64, error) {
	if n < 0 || n > u.up.Size {
		return 0, fmt.Errorf("the server asked to go on at byte %d of %d: %w", n, u.up.Size, drivers.ErrUnavailable)
	}
	return n, nil
}

// received asks upload_req how many bytes the server has.
func (u *upload) received(ctx context.Context) (int64, error) {
	_, b, err := u.upCall(ctx, "upload_req", http.MethodGet, u.sessionHeader(), nil, true)
	if err != nil {
		return 0, fmt.Errorf("upload_req: %w", err)
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(string(b)), `"`), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("upload_req: not a byte count: %w", drivers.ErrUnavailable)
	}
	return n, nil
}

// finish asks upload_finish until it is done, with the pacer's backoff
// while it answers 202 (finishPolls times at most).
func (u *upload) finish(ctx context.Context) (doneAnswer, error) {
	var done doneAnswer
	poll := &pacer.Pacer{Attempts: finishPolls, Sleep: u.d.sleep}
	err := poll.Call(ctx, func(int) (pacer.Retry, error) {
		status, b, err := u.upCall(ctx, "upload_finish", http.MethodPost, u.sessionHeader(), nil, true)
		switch {
		case err != nil:
			return pacer.Retry{}, err
		case status == http.StatusAccepted:
			return pacer.Retry{Again: true}, errMerging
		}
		return pacer.Retry{}, decodeInto(b, &done)
	})
	if err != nil {
		return doneAnswer{}, fmt.Errorf("upload_finish: %w", err)
	}
	return done, nil
}

// abort releases the session of an upload that will not finish, even when
// the request was cancelled.
func (u *upload) abort() {
	if u.session == "" {
		return
	}
	ctx := context.Background()
	if _, _, err := u.upCall(ctx, "upload_abort", http.MethodPost, u.sessionHeader(), nil, true); err != nil && !isNotFound(err) {
		u.d.log.Warn().Str("error", err.Error()).Msg("gokuai: abort of a failed upload")
	}
}
