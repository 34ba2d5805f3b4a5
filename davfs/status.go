package davfs

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"strconv"

	"bridge/davfs/locks"
	"bridge/drivers"
)

// Errors the bridge itself raises, with their place in the status table.
var (
	errBadPath       = errors.New("invalid path") // NUL, ".."
	errNoParent      = errors.New("parent folder does not exist")
	errFixedFolder   = errors.New("the share root and mount roots cannot be changed")
	errIsFolder      = errors.New("a folder is in the way")
	errIntoItself    = errors.New("cannot move or copy a folder into itself")
	errSameResource  = errors.New("source and destination are the same")
	errDestExists    = errors.New("destination exists and Overwrite is F")
	errBadRequest    = errors.New("bad request")
	errBadGateway    = errors.New("destination is on another server")
	errInfiniteDepth = errors.New("PROPFIND with Depth: infinity is disabled")
	errMacMetadata   = errors.New("macOS metadata files are refused on this mount")
	errBadName       = errors.New("names with control characters or invalid UTF-8 are refused")
	// errNoLockToRefresh: a LOCK refresh names no lock of the path (412,
	// RFC 4918 section 9.10.2: the If header fails).
	errNoLockToRefresh = errors.New("no such lock to refresh")
)

// statusTable maps error kinds to WebDAV status codes: the one place where
// provider failures become HTTP answers. Order matters: the first kind the
// error wraps wins.
var statusTable = []struct {
	kind   error
	status int
}{
	{locks.ErrLocked, http.StatusLocked},
	{locks.ErrNotOwner, http.StatusForbidden},
	{errNoLockToRefresh, http.StatusPreconditionFailed},
	{locks.ErrNoSuchLock, http.StatusConflict},
	{drivers.ErrNotFound, http.StatusNotFound},
	{fs.ErrNotExist, http.StatusNotFound},
	{drivers.ErrExist, http.StatusConflict},
	{fs.ErrExist, http.StatusConflict},
	{drivers.ErrPermission, http.StatusForbidden},
	{fs.ErrPermission, http.StatusForbidden},
	{drivers.ErrQuota, http.StatusInsufficientStorage},
	{drivers.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{drivers.ErrInvalidName, http.StatusBadRequest},
	{errBadPath, http.StatusBadRequest},
	{errBadRequest, http.StatusBadRequest},
	{errBadName, http.StatusBadRequest},
	{errNoParent, http.StatusConflict},
	{errIntoItself, http.StatusConflict},
	{errFixedFolder, http.StatusForbidden},
	{errSameResource, http.StatusForbidden},
	{errInfiniteDepth, http.StatusForbidden},
	{errMacMetadata, http.StatusForbidden},
	{errIsFolder, http.StatusMethodNotAllowed},
	{errDestExists, http.StatusPreconditionFailed},
	{errBadGateway, http.StatusBadGateway},
	{drivers.ErrNotSupported, http.StatusNotImplemented},
	{drivers.ErrRateLimited, http.StatusServiceUnavailable},
	{drivers.ErrAuthExpired, http.StatusServiceUnavailable},
	{drivers.ErrUnavailable, http.StatusBadGateway},
	{drivers.ErrStateUnavailable, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// statusOf returns the status for err and the public message to send: the
// kind's own text, never the wrapped provider detail (which may hold URLs).
func statusOf(err error) (int, string) {
	for _, e := range statusTable {
		if errors.Is(err, e.kind) {
			var r *drivers.Reason
			if errors.As(err, &r) && errors.Is(r.Kind, e.kind) {
				return e.status, r.Error() // the driver's words for the client
			}
			return e.status, e.kind.Error()
		}
	}
	return http.StatusInternalServerError, "internal error"
}

// writeError answers err with its status, a short plain-text body and
// Retry-After when the provider told us how long to wait.
func writeError(w http.ResponseWriter, err error) int {
	status, msg := statusOf(err)
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads the answer.
		status, msg = 499, "client closed request"
	}
	if after, ok := drivers.RetryAfter(err); ok {
		secs := int(after.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	} else if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	if errors.Is(err, drivers.ErrAuthExpired) {
		msg = "this mount needs `bridge login` again: " + msg
	}
	writeStatus(w, status, msg)
	return status
}

func writeStatus(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	if msg != "" {
		text += ": " + msg
	}
	w.Write([]byte(strconv.Itoa(status) + " " + text + "\n"))
}
