package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-value-7f3a"
	v := NewValue([]byte(canary))
	vs := Versioned{Path: "p", Value: v}
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%s %v %+v %#v %x %X %q %d", v, v, v, v, v, v, v, v),
		fmt.Sprintf("%v %+v %#v", vs, vs, vs), fmt.Sprint(&vs),
		fmt.Errorf("wrapped: %v", v).Error(),
	}
	for _, x := range []any{v, vs, &vs, map[string]Value{"k": v}} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	for _, o := range outs {
		if strings.Contains(o, canary) || strings.Contains(o, fmt.Sprintf("%x", canary)) {
			t.Fatalf("value leaked: %s", o)
		}
		if !strings.Contains(o, "redacted") {
			t.Fatalf("output %q does not show the redaction", o)
		}
	}
	if string(v.Reveal()) != canary {
		t.Fatal("Reveal lost the bytes")
	}
	v.Wipe()
	if strings.Contains(string(v.Reveal()), "CANARY") {
		t.Fatal("Wipe left the bytes")
	}
}

func TestClass(t *testing.T) {
	t.Parallel()
	for _, c := range classes {
		wrapped := fmt.Errorf("ctx: %w", c.err)
		if got := Class(wrapped); got != c.name {
			t.Errorf("Class(%v) = %q, want %q", wrapped, got, c.name)
		}
		if ClassError(c.name) != c.err {
			t.Errorf("ClassError(%q) does not round-trip", c.name)
		}
	}
	if Class(nil) != "" || Class(errors.New("x")) != "internal" || ClassError("nope") != nil {
		t.Fatal("Class of nil/unknown is wrong")
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"30d": "720h0m0s", "720h": "720h0m0s", "90m": "1h30m0s", "": ""} {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"-1h", "abc", "3x", "-5d", "99999d", "1.5d"} {
		if _, err := ParseDuration(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseDuration(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"30d"`), &d); err != nil || d.String() != "720h0m0s" {
		t.Errorf("json 30d = %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`5`), &d); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("json number accepted: %v", err)
	}
}
