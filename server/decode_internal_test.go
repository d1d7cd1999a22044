package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody: bodies of any size, read in any chunks, come back whole;
// the size limit around the body still applies; a declared length is no
// reason to allocate it.
func TestReadBody(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 64 << 10, 3<<20 + 7} {
		want := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
		for name, r := range map[string]io.Reader{"whole": bytes.NewReader(want), "one byte at a time": iotest.OneByteReader(bytes.NewReader(want))} {
			if n > 1<<20 && name != "whole" {
				continue
			}
			got, err := readBody(r, int64(n))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%d bytes, %s: %d bytes back, %v", n, name, len(got), err)
			}
		}
	}
	limited := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), 10)
	var mbe *http.MaxBytesError
	if _, err := readBody(limited, 100); !errors.As(err, &mbe) {
		t.Errorf("over the limit: %v", err)
	}
	if b, err := readBody(strings.NewReader("{}"), 1<<40); err != nil || string(b) != "{}" || cap(b) > 128<<10 {
		t.Errorf("huge declared length: %q cap %d, %v", b, cap(b), err)
	}
}
