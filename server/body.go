package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/passman-dev/passman/internal/strictjson"
	"github.com/passman-dev/passman/secret"
)

// decode reads a JSON body into v. An empty body leaves v as it is when
// emptyOK. Every request body is decoded here, and strictly: a key twice
// in one object, or a key matching a field only when case is ignored, is
// refused (strictjson), where encoding/json would keep the last or match
// it. Errors never quote the body.
func decode(c *call, v any, emptyOK bool) error {
	body, err := readBody(c.r.Body, c.r.ContentLength)
	defer clear(body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: request body exceeds %d bytes", secret.ErrTooLarge, mbe.Limit)
	case err != nil:
		return fmt.Errorf("%w: read request body: %w", secret.ErrInvalidArgument, err)
	}
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("%w: request body is empty", secret.ErrInvalidArgument)
	}
	var strict *strictjson.Error
	if err := strictjson.Check(body, v); errors.As(err, &strict) {
		return fmt.Errorf("%w: %s", secret.ErrInvalidArgument, strict.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return nil
	}
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ute) && ute.Field != "":
		return fmt.Errorf("%w: request body: field %s has the wrong type", secret.ErrInvalidArgument, ute.Field)
	default:
		return fmt.Errorf("%w: request body is not valid JSON for %s %s, or has unknown fields or invalid values", secret.ErrInvalidArgument, c.route.Method, c.route.Path)
	}
}

// readBody reads a request body (bounded by the MaxBytesReader around
// it) into a buffer that grows by doubling and wipes each buffer it
// outgrows: the body may hold a value, and bytes.Buffer or io.ReadAll
// would leave copies of it in garbage. The buffer starts at the declared
// length, up to 64 KiB: a client must send bytes, not merely announce
// them, to make the server hold memory.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	buf := make([]byte, 0, min(max(declared, 0), 64<<10)+bytes.MinRead)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// checkBrowser refuses what a browser could send to the API on another
// site's behalf, before anything else is done: a cross-origin write
// (403) or a body that is not declared JSON (415).
func checkBrowser(r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	return checkContentType(r)
}

// checkOrigin refuses a write a browser sends on another site's behalf
// (CSRF): every browser sends Origin with a non-GET request, and
// Sec-Fetch-Site says whether the page was another origin's. No passman
// client sends either. Bearer tokens are not ambient, but a client
// certificate installed in a browser is.
func checkOrigin(r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	_, origin := r.Header["Origin"]
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case origin, site == "cross-site", site == "same-site":
		return fmt.Errorf("%w: cross-origin (browser) requests are refused; the API is for passman clients", secret.ErrPermissionDenied)
	}
	return nil
}

// checkContentType refuses a body not declared as JSON in UTF-8, the
// only thing the server reads: a browser may send text/plain and
// form bodies cross-origin without asking the server first.
func checkContentType(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil // no body (a chunked one has length -1)
	}
	vals := r.Header.Values("Content-Type")
	if len(vals) == 1 {
		mt, params, err := mime.ParseMediaType(vals[0])
		cs, hasCS := params["charset"]
		if err == nil && mt == "application/json" && (!hasCS || strings.EqualFold(cs, "utf-8")) {
			return nil
		}
	}
	return mediaTypeError{}
}

// mediaTypeError answers a body of another type than application/json.
type mediaTypeError struct{}

func (mediaTypeError) Error() string {
	return "request body must be JSON: send Content-Type: application/json (charset utf-8, if any)"
}
