package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// Fingerprint confirmations per identity: a burst of 20 batches of up to
// fpindex.MaxConfirm fingerprints, then one batch a second. A scan
// confirms a fragment's candidates in one request and each fingerprint
// once, and candidates are rare (see fpindex.PrefixBits), so a scan of a
// large history stays well inside; what the bound stops is using the
// route as a bulk oracle, which the server-wide limit (off by default)
// does not.
const (
	DefaultConfirmRPS   = 1
	DefaultConfirmBurst = 20
)

// serveFingerprintExport answers the shareable fingerprint index of the
// secrets under ?prefix= that the caller may read. It holds the detection
// key: the Service authorizes and audits the export before writing
// anything, and the buffer is wiped once sent.
func serveFingerprintExport(h *handler, ctx context.Context, c *call) (any, error) {
	prefix := c.r.URL.Query().Get(api.QueryPrefix)
	if err := secret.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := h.svc.ExportFingerprintPrefixes(ctx, prefix, &buf); err != nil {
		clear(buf.Bytes())
		return nil, err
	}
	b := buf.Bytes()
	c.after = func() { clear(b) }
	return json.RawMessage(b), nil
}

// rateLimited refuses a request over its identity's budget: 429 with
// Retry-After, as the server-wide limiter answers.
type rateLimited struct{ wait time.Duration }

func (r rateLimited) Error() string {
	return "rate limit exceeded; retry after " + strconv.Itoa(retryAfterSeconds(r.wait)) + "s"
}

// serveFingerprintConfirm answers which of a batch of fingerprints are
// values of versions the caller may read. The identity's budget is taken
// before anything else is done; the Service validates the batch,
// authorizes every match as a read and audits the call.
func serveFingerprintConfirm(h *handler, ctx context.Context, c *call) (any, error) {
	if ok, wait := h.confirm.Allow(c.token.Identity); !ok {
		return nil, rateLimited{wait}
	}
	var req api.ConfirmRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return h.svc.ConfirmFingerprints(ctx, req.Fingerprints)
}
