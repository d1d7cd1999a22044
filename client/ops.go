package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// Rotate asks the server to rotate path through its connector, as the
// token's identity (see rotation.Runner.Rotate; trigger is "manual" or
// "due"). A rotation that failed returns its Result, whose State says
// whether it was rolled back, and an error, as the engine does. It is
// never retried once it may have reached the server: a repeat would start
// another rotation.
func (c *Client) Rotate(ctx context.Context, path, trigger string) (rotation.Result, error) {
	var out rotation.Result
	if err := c.do(ctx, request{route: api.RouteRotate, tail: path, in: api.RotateRequest{Trigger: trigger}, out: &out}); err != nil {
		return rotation.Result{Path: path}, err
	}
	if out.State == secret.RotationRolledBack || out.State == secret.RotationFailed {
		return out, fmt.Errorf("rotate %s: %s", out.Path, out.Error)
	}
	return out, nil
}

// RotateDue asks the server to rotate every due secret (see
// rotation.Runner.RotateDue). Not retried once it may have reached the
// server.
func (c *Client) RotateDue(ctx context.Context, opts rotation.DueOptions) (rotation.DueReport, error) {
	var out rotation.DueReport
	in := api.RotateDueRequest{Prefix: opts.Prefix, Canary: opts.Canary, MaxFailures: opts.MaxFailures, Workers: opts.Workers}
	err := c.do(ctx, request{route: api.RouteRotateDue, in: in, out: &out})
	return out, err
}

// RotationStatus lists the rotated secrets under prefix and whether each
// is due.
func (c *Client) RotationStatus(ctx context.Context, prefix string) ([]rotation.Entry, error) {
	var out []rotation.Entry
	var q url.Values
	if prefix != "" {
		q = url.Values{api.QueryPrefix: {prefix}}
	}
	err := c.do(ctx, request{route: api.RouteRotationStatus, query: q, out: &out, retry: true})
	return out, err
}

// ExportFingerprintPrefixes writes the server's shareable fingerprint
// index of the secrets under prefix that the token may read (detection key
// and fingerprint prefixes; see package fpindex) to w, as
// core.Local.ExportFingerprintPrefixes does, and returns its header
// without the key.
func (c *Client) ExportFingerprintPrefixes(ctx context.Context, prefix string, w io.Writer) (fpindex.File, error) {
	var f fpindex.File
	defer func() { clear(f.DetectionKey) }()
	var q url.Values
	if prefix != "" {
		q = url.Values{api.QueryPrefix: {prefix}}
	}
	if err := c.do(ctx, request{route: api.RouteFingerprintExport, query: q, out: &f, retry: true}); err != nil {
		return fpindex.File{}, err
	}
	if err := fpindex.Write(w, f); err != nil {
		return fpindex.File{}, err
	}
	head := f
	head.DetectionKey = nil
	return head, nil
}

var _ fpindex.Confirmer = (*Client)(nil)

// ConfirmFingerprints asks the server which of fps are values of versions
// the token may read (see core.Local.ConfirmFingerprints), in requests of
// at most fpindex.MaxConfirm fingerprints.
func (c *Client) ConfirmFingerprints(ctx context.Context, fps []string) (fpindex.Confirmation, error) {
	out := fpindex.Confirmation{Matches: map[string][]secret.FingerprintMatch{}}
	for batch := range slices.Chunk(fps, fpindex.MaxConfirm) {
		var conf fpindex.Confirmation
		if err := c.do(ctx, request{route: api.RouteFingerprintConfirm, in: api.ConfirmRequest{Fingerprints: batch}, out: &conf, retry: true}); err != nil {
			return fpindex.Confirmation{}, err
		}
		if out.StoreID != "" && conf.StoreID != out.StoreID {
			return fpindex.Confirmation{}, fmt.Errorf("%s: the server answered for two stores", api.RouteFingerprintConfirm.Name)
		}
		out.StoreID = conf.StoreID
		maps.Copy(out.Matches, conf.Matches)
	}
	return out, nil
}

// RespondToLeaks asks the server to respond to leaks with its own respond
// policy and connectors, as the token's identity (see
// rotation.Runner.RespondToLeaks): one result per leak, in order, and the
// first failure as an error whose class is the server's. Leaks beyond
// api.MaxRespondLeaks go in further requests. A request is never retried
// once it may have reached the server: a repeat may rotate again.
func (c *Client) RespondToLeaks(ctx context.Context, leaks []rotation.LeakFinding) ([]rotation.LeakResult, error) {
	var results []rotation.LeakResult
	var first error
	for batch := range slices.Chunk(leaks, api.MaxRespondLeaks) {
		var out api.RespondResponse
		if err := c.do(ctx, request{route: api.RouteRespond, in: api.RespondRequest{Leaks: batch}, out: &out}); err != nil {
			return results, errors.Join(first, err)
		}
		if len(out.Results) != len(batch) {
			return results, errors.Join(first, fmt.Errorf("%s: the server answered %d results for %d leaks", api.RouteRespond.Name, len(out.Results), len(batch)))
		}
		results = append(results, out.Results...)
		if out.Error != nil && first == nil {
			first = newError(http.StatusOK, *out.Error, "")
		}
	}
	return results, first
}

// EvalPolicy evaluates one decision of the server's policies on input (a
// JSON document of the decision's input schema), as
// core.Local.EvalPolicy does: an admin action the server audits. The
// result's Result is the server's JSON as it came (a json.RawMessage), so
// it encodes exactly as the server's engine produced it.
func (c *Client) EvalPolicy(ctx context.Context, decision string, input json.RawMessage, explain bool) (policy.EvalResult, error) {
	var out struct {
		Result      json.RawMessage `json:"result"`
		Explanation []string        `json:"explanation"`
	}
	in := api.PolicyEvalRequest{Decision: decision, Input: input, Explain: explain}
	if err := c.do(ctx, request{route: api.RoutePolicyEval, in: in, out: &out, retry: true}); err != nil {
		return policy.EvalResult{}, err
	}
	return policy.EvalResult{Result: out.Result, Explanation: out.Explanation}, nil
}

// CompareValue implements passman.ValueComparer: the server compares, so
// the value is sent (in the body) but the secret's never comes back.
func (c *Client) CompareValue(ctx context.Context, path string, value []byte) (bool, error) {
	var out api.CompareResponse
	err := c.do(ctx, request{route: api.RouteCompare, tail: path, in: api.CompareRequest{Value: value}, out: &out, retry: true})
	return out.Equal, err
}

// SchedulerStatus asks the server for its scheduler's leader and last runs.
func (c *Client) SchedulerStatus(ctx context.Context) (scheduler.Status, error) {
	var out scheduler.Status
	err := c.do(ctx, request{route: api.RouteSchedulerStatus, out: &out, retry: true})
	return out, err
}

// Backup streams a backup of the server's store to w and returns its
// header, read back from what was written: the caller keeps w's bytes only
// once a backup.Reader accepts them to the end (the checksum).
func (c *Client) Backup(ctx context.Context, w io.Writer, opts backup.Options) (backup.Header, error) {
	var q url.Values
	if opts.Logical {
		q = url.Values{api.QueryLogical: {"true"}}
	}
	hw := &headerCapture{w: w}
	if err := c.do(ctx, request{route: api.RouteBackup, query: q, sink: hw}); err != nil {
		return backup.Header{}, err
	}
	r, err := backup.NewReader(bytes.NewReader(hw.head))
	if err != nil {
		return backup.Header{}, fmt.Errorf("%s: %w", api.RouteBackup.Name, err)
	}
	return r.Header, nil
}

// headerCapture passes writes on, keeping the first bytes (the header).
type headerCapture struct {
	w    io.Writer
	head []byte
}

func (h *headerCapture) Write(p []byte) (int, error) {
	if n := backup.MaxHeader + 64 - len(h.head); n > 0 {
		h.head = append(h.head, p[:min(n, len(p))]...)
	}
	return h.w.Write(p)
}
