package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

var (
	ckKey  = bytes.Repeat([]byte{7}, 32)
	ckHead = Head{Seq: 42, Hash: strings.Repeat("ab", 32)}
	ckTime = time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC)
)

func signed(t testing.TB) Checkpoint {
	t.Helper()
	c, err := SignCheckpoint(ckHead, ckTime, "k0123456789abcdef", ckKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckpointSignParse(t *testing.T) {
	t.Parallel()
	c := signed(t)
	if !c.Signed() || !c.CheckMAC(ckKey) {
		t.Fatalf("fresh checkpoint does not verify: %+v", c)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCheckpoint(b)
	if err != nil || got != c || !got.CheckMAC(ckKey) {
		t.Fatalf("round trip of %s = %+v, %v", b, got, err)
	}
	// The same instant in another zone is the same checkpoint.
	zoned := bytes.Replace(b, []byte("12:30:00.123456789Z"), []byte("14:30:00.123456789+02:00"), 1)
	if got, err := ParseCheckpoint(zoned); err != nil || !got.CheckMAC(ckKey) {
		t.Fatalf("zoned time: %+v, %v", got, err)
	}
	if c.CheckMAC(bytes.Repeat([]byte{8}, 32)) {
		t.Fatal("MAC verifies under another key")
	}
	// Every field is covered.
	for name, edit := range map[string]func(*Checkpoint){
		"seq":    func(c *Checkpoint) { c.Seq++ },
		"hash":   func(c *Checkpoint) { c.Hash = strings.Repeat("cd", 32) },
		"time":   func(c *Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		"key id": func(c *Checkpoint) { c.KeyID = "k1123456789abcdef" },
		"mac":    func(c *Checkpoint) { c.MAC = strings.Repeat("0", 64) },
		"no mac": func(c *Checkpoint) { c.MAC = "" },
	} {
		e := c
		edit(&e)
		if e.CheckMAC(ckKey) {
			t.Errorf("%s edited: MAC still verifies", name)
		}
	}
}

func TestParseCheckpointUnsigned(t *testing.T) {
	t.Parallel()
	legacy := `{"seq":42,"hash":"` + ckHead.Hash + `"}`
	c, err := ParseCheckpoint([]byte(legacy))
	if err != nil || c.Head != ckHead || c.Signed() || c.CheckMAC(ckKey) {
		t.Fatalf("unsigned checkpoint = %+v, %v", c, err)
	}
	for _, zero := range []string{`{}`, `{"seq":0,"hash":""}`, ` {"seq":0} `} {
		if c, err := ParseCheckpoint([]byte(zero)); err != nil || c != (Checkpoint{}) {
			t.Errorf("%s = %+v, %v", zero, c, err)
		}
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	t.Parallel()
	good, _ := signed(t).Marshal()
	const canary = "CANARYzq9"
	hash := ckHead.Hash
	mac := strings.Repeat("0f", 32)
	sig := `,"time":"2026-03-01T12:30:00Z","key_id":"k1","mac":"` + mac + `"`
	for name, in := range map[string]string{
		"empty":            ``,
		"null":             `null`,
		"array":            `[]`,
		"string":           `"` + canary + `"`,
		"not json":         canary,
		"unknown field":    `{"seq":1,"hash":"` + hash + `","` + canary + `":1}`,
		"trailing data":    string(good) + `x`,
		"two objects":      string(good) + string(good),
		"oversized":        `{"seq":1,"hash":"` + hash + `"` + strings.Repeat(" ", 1024) + `}`,
		"seq 0 with hash":  `{"seq":0,"hash":"` + hash + `"}`,
		"short hash":       `{"seq":1,"hash":"abc"}`,
		"upper hash":       `{"seq":1,"hash":"` + strings.ToUpper(hash) + `"}`,
		"no hash":          `{"seq":1}`,
		"negative seq":     `{"seq":-1,"hash":"` + hash + `"}`,
		"signed seq 0":     `{"seq":0,"hash":""` + sig + `}`,
		"key id alone":     `{"seq":1,"hash":"` + hash + `","key_id":"k1"}`,
		"mac alone":        `{"seq":1,"hash":"` + hash + `","mac":"` + mac + `"}`,
		"time alone":       `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z"}`,
		"no time":          `{"seq":1,"hash":"` + hash + `","key_id":"k1","mac":"` + mac + `"}`,
		"bad time":         `{"seq":1,"hash":"` + hash + `","time":"yesterday","key_id":"k1","mac":"` + mac + `"}`,
		"key id injection": `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z","key_id":"k1\n` + canary + `","mac":"` + mac + `"}`,
		"key id too long":  `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z","key_id":"` + strings.Repeat("k", 65) + `","mac":"` + mac + `"}`,
		"short mac":        `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z","key_id":"k1","mac":"00"}`,
		"upper mac":        `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z","key_id":"k1","mac":"` + strings.ToUpper(mac) + `"}`,
		"mac not a string": `{"seq":1,"hash":"` + hash + `","time":"2026-03-01T12:30:00Z","key_id":"k1","mac":1}`,
	} {
		c, err := ParseCheckpoint([]byte(in))
		if !errors.Is(err, secret.ErrCorrupt) || c != (Checkpoint{}) {
			t.Errorf("%s: ParseCheckpoint = %+v, %v; want ErrCorrupt", name, c, err)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: error quotes the input: %v", name, err)
		}
	}
}

func TestSignCheckpointRefusesInvalid(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		h  Head
		t  time.Time
		id string
	}{
		"zero head": {Head{}, ckTime, "k1"},
		"bad hash":  {Head{Seq: 1, Hash: "x"}, ckTime, "k1"},
		"no time":   {ckHead, time.Time{}, "k1"},
		"no key id": {ckHead, ckTime, ""},
		"bad key":   {ckHead, ckTime, "k 1"},
	} {
		if got, err := SignCheckpoint(c.h, c.t, c.id, ckKey); err == nil {
			t.Errorf("%s: SignCheckpoint = %+v", name, got)
		}
	}
}

// FuzzParseCheckpoint feeds arbitrary bytes to ParseCheckpoint, which must
// never panic, must fail with ErrCorrupt, and must return only checkpoints
// that re-encode to themselves and whose MAC verifies only if it is the
// MAC SignCheckpoint computes.
func FuzzParseCheckpoint(f *testing.F) {
	good, _ := signed(f).Marshal()
	f.Add(good)
	f.Add([]byte(`{"seq":42,"hash":"` + ckHead.Hash + `"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":1,"hash":"` + ckHead.Hash + `","time":"0001-01-01T00:00:00Z","key_id":"k","mac":"` + ckHead.Hash + `"}`))
	f.Add([]byte(`{"seq":1,"hash":"` + ckHead.Hash + `","time":"9999-12-31T23:59:59.999999999-23:59","key_id":"k","mac":"` + ckHead.Hash + `"}`))
	f.Add([]byte(`{"seq":18446744073709551615,"hash":"` + ckHead.Hash + `","seq":1}`))
	f.Add([]byte(`{"seq":1e3}`))
	f.Add([]byte("\xff{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCheckpoint(data)
		if err != nil {
			if !errors.Is(err, secret.ErrCorrupt) || c != (Checkpoint{}) {
				t.Fatalf("ParseCheckpoint = %+v, %v", c, err)
			}
			return
		}
		if len(data) > maxCheckpointSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed checkpoint: %v", err)
		}
		again, err := ParseCheckpoint(b)
		if err != nil || again != c {
			t.Fatalf("re-parse of %s = %+v, %v; want %+v", b, again, err, c)
		}
		if !c.Signed() {
			if c.CheckMAC(ckKey) {
				t.Fatal("unsigned checkpoint verifies")
			}
			return
		}
		want, err := SignCheckpoint(c.Head, c.Time, c.KeyID, ckKey)
		if err != nil {
			t.Fatalf("SignCheckpoint refuses a parsed checkpoint: %v", err)
		}
		if c.CheckMAC(ckKey) != (want.MAC == c.MAC) {
			t.Fatalf("CheckMAC = %v for MAC %s, want MAC %s", c.CheckMAC(ckKey), c.MAC, want.MAC)
		}
	})
}
