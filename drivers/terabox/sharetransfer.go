package terabox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// Task polling: the provider copies asynchronously; its task is asked
// after a growing wait, for at most a few minutes all told.
const (
	taskPolls      = 40
	taskMinBackoff = 500 * time.Millisecond
	taskMaxBackoff = 5 * time.Second
)

// errTaskRunning is a transfer task that has not ended yet.
var errTaskRunning = errors.New("the transfer task has not ended")

// transferred is one item of a transfer's outcome.
type transferred struct {
	From     string   `json:"from"`
	FromFsID flex.ID  `json:"from_fs_id"`
	To       string   `json:"to"`
	ToFsID   flex.ID  `json:"to_fs_id"`
	Errno    flex.Int `json:"errno"`
}

// transfer saves the share's item id into the folder dest (a full path)
// of the account of to, whose token the call and its task's queries
// carry, with share/transfer, asynchronously (async=2, the document's
// advice), and waits for its task to end. ondup is "fail" or "newcopy".
// It returns the item's outcome: where it landed.
func (s *Share) transfer(ctx context.Context, to *Driver, id, dest, ondup string) (transferred, error) {
	var out struct {
		TaskID flex.ID `json:"task_id"`
		Data   struct {
			TaskID flex.ID `json:"task_id"`
		} `json:"data"`
		Info []struct {
			Errno flex.Int `json:"errno"`
		} `json:"info"`
		Extra struct {
			List []transferred `json:"list"`
		} `json:"extra"`
	}
	rq := request{op: "share transfer", method: http.MethodPost, path: "/openapi/share/transfer",
		query: url.Values{"async": {"2"}, "ondup": {ondup}},
		form:  url.Values{"fsidlist": {`["` + id + `"]`}, "path": {dest}}}
	err := s.callAs(ctx, to, rq, &out, func(q url.Values, sess shareSession) {
		q.Set("shareid", sess.ShareID)
		q.Set("from", sess.UK) // the owner's uk: the document's example, not its table
		q.Set("sekey", sess.Sekey)
	})
	if err != nil {
		return transferred{}, err
	}
	task := out.TaskID
	if task == "" || task == "0" {
		task = out.Data.TaskID
	}
	if task == "" || task == "0" { // done at once (async 0 or 1 answers)
		for _, it := range out.Info {
			if it.Errno != 0 {
				return transferred{}, itemError(int(it.Errno))
			}
		}
		return pick(out.Extra.List, id)
	}
	list, err := await(ctx, to, string(task))
	if err != nil {
		return transferred{}, err
	}
	return pick(list, id)
}

// pick is the outcome of item id in a transfer's list (the only one when
// the list does not name it).
func pick(list []transferred, id string) (transferred, error) {
	for _, it := range list {
		if string(it.FromFsID) == id || len(list) == 1 {
			if it.Errno != 0 {
				return transferred{}, itemError(int(it.Errno))
			}
			return it, nil
		}
	}
	return transferred{}, nil // the caller finds the copy by name
}

// itemError classifies a transfer item's (or task's) errno.
func itemError(errno int) error {
	return fmt.Errorf("terabox: share transfer: %w", classify(&apiError{op: "share transfer", Status: http.StatusOK, Errno: errno, json: true}))
}

// await polls a transfer task of d's account until it ends, through the
// pacer: the task running is a passing failure, waited out with a growing
// backoff, for at most taskPolls queries. A task still running then is
// ErrUnavailable (it may end later).
func await(ctx context.Context, d *Driver, task string) ([]transferred, error) {
	var list []transferred
	p := &pacer.Pacer{Attempts: taskPolls, MinBackoff: taskMinBackoff, MaxBackoff: taskMaxBackoff, Sleep: d.sleep}
	err := p.Call(ctx, func(int) (pacer.Retry, error) {
		var out struct {
			Status    string        `json:"status"`
			TaskErrno flex.Int      `json:"task_errno"`
			List      []transferred `json:"list"`
		}
		rq := request{op: "share taskquery", method: http.MethodGet, path: "/openapi/share/taskquery",
			query: url.Values{"taskid": {task}}, resend: true}
		if err := d.do(ctx, rq, &out); err != nil {
			return pacer.Retry{}, err // do has retried what passes
		}
		switch out.Status {
		case "success":
			list = out.List
			return pacer.Retry{}, nil
		case "failed":
			errno := int(out.TaskErrno)
			for _, it := range out.List {
				if errno == 0 && it.Errno != 0 {
					errno = int(it.Errno)
				}
			}
			if errno == 0 {
				return pacer.Retry{}, fmt.Errorf("terabox: share transfer: the task failed: %w", drivers.ErrUnavailable)
			}
			return pacer.Retry{}, itemError(errno)
		}
		return pacer.Retry{Again: true}, errTaskRunning
	})
	if errors.Is(err, errTaskRunning) {
		return nil, fmt.Errorf("terabox: share transfer: %w after %d queries (it may still end): %w", errTaskRunning, taskPolls, drivers.ErrUnavailable)
	}
	return list, err
}
