package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/internal/strictjson"
	"github.com/passman-dev/passman/secret"
)

type inner struct {
	Name string            `json:"name"`
	Tags map[string]string `json:"tags,omitempty"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
	Shadowed string `json:"n"`
}

// doc has every shape Check distinguishes.
type doc struct {
	Value []byte            `json:"value"`
	N     *int              `json:"n,omitempty"`
	Meta  *inner            `json:"meta,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
	List  []inner           `json:"list,omitempty"`
	Raw   json.RawMessage   `json:"raw,omitempty"`
	Any   any               `json:"any,omitempty"`
	TTL   secret.Duration   `json:"ttl,omitempty"`
	When  time.Time         `json:"when,omitzero"`
	Skip  string            `json:"-"`
	Plain string
	Embedded
	unexported int // must not be a field
}

var _ = doc{}.unexported

// fieldNames are every JSON field name of doc and inner.
var fieldNames = map[string]bool{
	"value": true, "n": true, "meta": true, "tags": true, "list": true, "raw": true, "any": true,
	"ttl": true, "when": true, "Plain": true, "promoted": true, "name": true,
}

func TestCheck(t *testing.T) {
	deep := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	cases := []struct {
		name, body string
		// want is a substring of the *Error's message; "" means accepted,
		// "syntax" means left to the decoder (not an *Error).
		want string
	}{
		{"empty", ``, ""},
		{"null", `null`, ""},
		{"valid", `{"value":"aGk=","n":1,"meta":{"name":"x","tags":{"a":"1","A":"2"}},"tags":{"k":"v"},"list":[{"name":"a"},{"name":"a"}],"raw":{"x":[1,{"y":2}]},"any":[{"a":1},{"a":1}],"ttl":"1h","when":"2026-01-01T00:00:00Z","Plain":"p","promoted":"e"}`, ""},
		{"case of a field", `{"Value":"aGk="}`, `differs from the field name "value" only by case`},
		{"upper case", `{"VALUE":"aGk="}`, `field name "value"`},
		{"a skipped field is not matched by folding", `{"\u017fkip":"x","ttl":"1h"}`, "unknown key"},
		{"long s folds to s", `{"li\u017ft":[]}`, `field name "list" only by case`},
		{"long s in a nested struct", `{"tags":{},"list":[{"name":"a","tag\u017f":{}}]}`, `in list[0] differs from the field name "tags" only by case`},
		{"case of the Go name", `{"plain":"p"}`, `field name "Plain"`},
		{"case of an embedded field", `{"Promoted":"p"}`, `field name "promoted"`},
		{"duplicate", `{"value":"YQ==","value":"Yg=="}`, `key "value" appears more than once in the top-level object`},
		{"duplicate spelled with an escape", `{"value":"YQ==","valu\u0065":"Yg=="}`, `key "value" appears more than once`},
		{"duplicate in a nested struct", `{"meta":{"name":"a","name":"b"}}`, `key "name" appears more than once in meta`},
		{"duplicate in a nested map", `{"meta":{"name":"a","tags":{"k":"1","k":"2"}}}`, "a key appears more than once in meta.tags"},
		{"duplicate in an array element", `{"list":[{"name":"a"},{"name":"a","name":"b"}]}`, "list[1]"},
		{"duplicate in raw", `{"raw":{"a":{"b":1,"b":2}}}`, "within raw"},
		{"duplicate in any", `{"any":[[{"b":1,"c":{},"b":2}]]}`, "within any"},
		{"duplicate in a custom unmarshaler", `{"ttl":{"a":1,"a":1}}`, "within ttl"},
		{"invalid UTF-8 keys collapse to one", "{\"tags\":{\"a\xff\":\"1\",\"a\xfe\":\"2\"}}", "appears more than once in tags"},
		{"map keys are exact", `{"tags":{"k":"1","K":"2"}}`, ""},
		{"unknown key", `{"nope":1}`, "unknown key in the top-level object"},
		{"dash field", `{"Skip":"x"}`, "unknown key"},
		{"dash field by its Go name", `{"-":"x"}`, "unknown key"},
		{"unexported", `{"unexported":1}`, "unknown key"},
		{"embedded field shadowed by a shallower one", `{"n":1}`, ""},
		// Untyped values are taken whole by the decoder, whose scanner
		// stops at the same depth.
		{"deep raw", `{"raw":` + deep(strictjson.MaxDepth+10, "[", "]") + `}`, "syntax"},
		{"deep any objects", `{"any":` + deep(strictjson.MaxDepth+10, `{"a":`, "}") + `}`, "syntax"},
		{"deep wrong container", `{"meta":` + deep(strictjson.MaxDepth+10, "[", "]") + `}`, "nests more than"},
		{"duplicate deep in raw", `{"raw":` + strings.Repeat(`[{"a":`, 500) + `{"k":1,"x":"\"k\":","k":2}` + strings.Repeat("}]", 500) + `}`, "within raw"},
		{"key-like strings in raw values", `{"raw":{"k":"\"k\"","v":["k","k"],"w":{"k":{"k":1}}}}`, ""},
		{"escaped duplicate in raw", `{"raw":{"\u00e9":1,"é":2}}`, "within raw"},
		{"deep at the top", deep(strictjson.MaxDepth+10, "[", "]"), "nests more than"},
		{"deep but allowed", `{"raw":` + deep(100, "[", "]") + `}`, ""},
		{"deep where a string belongs", `{"value":` + deep(strictjson.MaxDepth+10, "[", "]") + `}`, "syntax"},
		{"unclosed", `{"value":"YQ==",`, "syntax"},
		{"bad token", `{"value" 1}`, "syntax"},
		{"wrong container is still checked", `{"meta":[{"a":1,"a":2}]}`, "within meta"},
		{"scalar where an object belongs", `{"meta":"x"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := strictjson.Check([]byte(c.body), &doc{})
			var se *strictjson.Error
			switch {
			case c.want == "":
				if err != nil {
					t.Errorf("refused: %v", err)
				}
			case c.want == "syntax":
				if err == nil || errors.As(err, &se) {
					t.Errorf("got %v, want a decoder error", err)
				}
			case !errors.As(err, &se) || !strings.Contains(err.Error(), c.want):
				t.Errorf("got %v, want an *Error with %q", err, c.want)
			}
		})
	}
}

// TestCheckHugeKey: a key of megabytes is refused fast, and the message
// does not carry it.
func TestCheckHugeKey(t *testing.T) {
	key := strings.Repeat("k", 1<<20)
	for _, body := range []string{
		`{"` + key + `":1}`,
		`{"tags":{"` + key + `":"1","` + key + `":"2"}}`,
		`{"raw":{"` + key + `":1,"` + key + `":2}}`,
	} {
		start := time.Now()
		err := strictjson.Check([]byte(body), &doc{})
		var se *strictjson.Error
		if !errors.As(err, &se) || strings.Contains(err.Error(), "kkkk") {
			t.Errorf("huge key: %.200v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("huge key took %v", d)
		}
	}
}

// TestCheckRequestTypes: the API's request bodies as the client writes
// them pass; their hostile variants do not.
func TestCheckRequestTypes(t *testing.T) {
	cas := 3
	owner := "team"
	ok := []any{
		&api.PutRequest{Value: []byte("v"), CAS: &cas, Stage: secret.StageCurrent, Metadata: &secret.MetadataUpdate{Owner: &owner, Tags: map[string]string{"a": "b"}, Rotation: &secret.Rotation{Connection: "generated", Params: map[string]string{"role": "app"}, GracePeriod: secret.Duration(time.Hour)}}},
		&api.TokenCreateRequest{Identity: "ci", Claims: map[string]string{"role": "deploy"}, TTL: secret.Duration(time.Hour)},
		&api.PolicyEvalRequest{Decision: "lint", Input: json.RawMessage(`{"secrets":[{"path":"a"}]}`)},
		&api.RespondRequest{},
	}
	for _, v := range ok {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := strictjson.Check(b, v); err != nil {
			t.Errorf("%T %s: %v", v, b, err)
		}
	}
	for body, v := range map[string]any{
		`{"value":"dg==","metadata":{"Owner":"x"}}`:                              &api.PutRequest{},
		`{"value":"dg==","metadata":{"rotation":{"connector":"a","Config":{}}}}`: &api.PutRequest{},
		`{"identity":"ci","claims":{"role":"reader","role":"root"}}`:             &api.TokenCreateRequest{},
		`{"identity":"ci","Identity":"root"}`:                                    &api.TokenCreateRequest{},
		`{"decision":"authz","input":{"subject":{"id":"a","id":"b"}}}`:           &api.PolicyEvalRequest{},
		`{"leaks":[{"path":"a/b","version":1,"Version":2}]}`:                     &api.RespondRequest{},
	} {
		var se *strictjson.Error
		if err := strictjson.Check([]byte(body), v); !errors.As(err, &se) {
			t.Errorf("%s: %v, want refused", body, err)
		}
	}
}

// quoted finds the quoted names in an error message.
var quoted = regexp.MustCompile(`"([^"]*)"`)

// FuzzCheck: Check never panics; an *Error quotes only field names, never
// the client's keys; and a document it accepts and encoding/json decodes
// has no duplicate key anywhere and no key that is not exactly a field
// name.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"value":"aGk=","n":1,"meta":{"name":"x","tags":{"a":"1"}},"list":[{"name":"a"}],"raw":{"x":[1]},"any":{"a":[]},"ttl":"1h"}`,
		`{"Value":"aGk="}`, `{"value":"YQ==","value":"Yg=="}`, `{"meta":{"tags":{"k":"1","k":"2"}}}`,
		`{"raw":[[[{"a":1,"a":2}]]]}`, `{"valu\u0065":1}`, `{"\u017fkip":1}`, "{\"tags\":{\"\xff\":\"1\"}}", `[`, `{"a":`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := strictjson.Check(data, &doc{})
		var se *strictjson.Error
		if errors.As(err, &se) {
			for _, m := range quoted.FindAllStringSubmatch(se.Error(), -1) {
				if !fieldNames[m[1]] {
					t.Fatalf("message quotes %q, no field name: %v", m[1], se)
				}
			}
			return
		}
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var d doc
		if dec.Decode(&d) != nil {
			return
		}
		var generic any
		if json.Unmarshal(data, &generic) != nil {
			return
		}
		if tokens, kept := keysInStream(t, data), keysIn(generic); tokens != kept {
			t.Fatalf("accepted, but %d keys in the stream and %d after decoding: a duplicate was kept", tokens, kept)
		}
		if top, ok := generic.(map[string]any); ok {
			for k := range top {
				if !fieldNames[k] {
					t.Fatalf("accepted key %q, which is no field name", k)
				}
			}
			if meta, ok := top["meta"].(map[string]any); ok {
				for k := range meta {
					if k != "name" && k != "tags" {
						t.Fatalf("accepted meta key %q", k)
					}
				}
			}
		}
	})
}

// keysInStream counts the keys of every object in the token stream.
func keysInStream(t *testing.T, data []byte) int {
	t.Helper()
	type frame struct{ object, wantKey bool }
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []frame
	valueEnded := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if len(stack) > 0 && stack[len(stack)-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueEnded()
				continue
			}
			n++
			stack[len(stack)-1].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueEnded()
		default:
			valueEnded()
		}
	}
}

// keysIn counts the keys of every object in a decoded document.
func keysIn(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, x := range v {
			n += keysIn(x)
		}
		return n
	case []any:
		n := 0
		for _, x := range v {
			n += keysIn(x)
		}
		return n
	}
	return 0
}
