// Package strictjson checks a JSON document against the Go type it is
// about to be decoded into, for what encoding/json accepts silently: a
// key that matches a struct field only when case is ignored ({"Value":…}
// for `json:"value"`, or "ſtage" with a long s for "stage"), and a key
// that appears twice in one object (encoding/json keeps the last, so two
// readers of one body may see different values). Both let a body mean
// something other than what a reviewer, a proxy or a log reader sees.
//
// Check walks the document with encoding/json's token stream beside the
// type, so it reads the same syntax the decoder will; it decodes nothing
// itself. Malformed JSON is left for the decoder to report.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// MaxDepth bounds the nesting of arrays and objects, as encoding/json's
// scanner does (it refuses deeper documents too).
const MaxDepth = 10000

// Error is a document Check refuses. Its message names the offending key
// only when the key is a field name of the type (text the server wrote);
// otherwise it names where the key is, never the key: it came from the
// client and may be anything.
type Error struct {
	msg string
}

func (e *Error) Error() string { return e.msg }

// Check reports an *Error when data, a JSON document to be decoded into
// v (a pointer, as for json.Unmarshal), has a duplicate key in any
// object, a key that differs from a field of v's type only by case, a
// key that is no field of v's type, or nesting deeper than MaxDepth.
// Inside values the type does not describe key by key (maps keep only
// the duplicate check, json.RawMessage, interfaces and custom
// unmarshalers too), keys are checked for duplicates only. Syntax errors
// and type mismatches are not Check's to report: it returns nil or the
// token stream's error, and the decoder will refuse the document.
func Check(data []byte, v any) error {
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return nil // empty: the caller decides
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are skipped; no float conversion
	w := walker{dec: dec}
	err := w.value(reflect.TypeOf(v), "", 0)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF // the token stream ends at EOF, even inside an object
	}
	return err
}

type walker struct {
	dec *json.Decoder
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shape is how a Go type is checked.
type shape int

const (
	opaque  shape = iota // any JSON; duplicate keys only
	scalar               // a string, number, bool or null: nothing to check
	object               // a struct: fields by name
	mapping              // a map: duplicate keys only, values by element type
	array                // a slice or array: elements by element type
)

func shapeOf(t reflect.Type) (shape, reflect.Type) {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) || t.Implements(textUnmarshalerType) {
			break
		}
		t = t.Elem()
	}
	if t == nil {
		return opaque, nil
	}
	pt := reflect.PointerTo(t)
	switch {
	case t.Implements(unmarshalerType) || pt.Implements(unmarshalerType):
		return opaque, t
	case t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType):
		return scalar, t
	}
	switch t.Kind() {
	case reflect.Struct:
		return object, t
	case reflect.Map:
		return mapping, t
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return scalar, t // []byte is base64 text
		}
		return array, t
	case reflect.Array:
		return array, t
	case reflect.Interface:
		return opaque, t
	default:
		return scalar, t
	}
}

// value checks the next value in the stream as one of type t, at the
// location at (a path of field names, "" for the document).
func (w *walker) value(t reflect.Type, at string, depth int) error {
	sh, t := shapeOf(t)
	if sh == opaque {
		// No type to follow: let the decoder take the value whole (one
		// fast pass that also validates it) and look for duplicate keys
		// in its bytes. A 4 MiB document of small tokens takes seconds
		// through the token stream, milliseconds this way.
		var raw json.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			return err
		}
		if duplicateKey(raw) {
			return &Error{fmt.Sprintf("request body: a key appears more than once in an object within %s", where(at))}
		}
		return nil
	}
	if sh == scalar {
		// Skip it whole without turning it into a string: it may be a
		// secret's value, which must not linger in an unwipeable copy.
		var raw json.RawMessage
		err := w.dec.Decode(&raw)
		clear(raw)
		return err
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar where a container was expected: the decoder refuses it
	}
	if depth >= MaxDepth {
		return &Error{fmt.Sprintf("request body nests more than %d levels deep", MaxDepth)}
	}
	switch {
	case d == '{' && sh == object:
		return w.object(t, at, depth+1)
	case d == '{' && sh == mapping:
		return w.mapping(t.Elem(), at, depth+1)
	case d == '[' && sh == array:
		return w.array(t.Elem(), at, depth+1)
	default:
		// A container of the wrong kind: the decoder refuses it, but its
		// keys are checked for duplicates all the same.
		return w.rest(d, at, depth+1)
	}
}

func (w *walker) object(t reflect.Type, at string, depth int) error {
	fields := fieldsOf(t)
	seen := map[string]bool{}
	for w.dec.More() {
		key, err := w.key()
		if err != nil {
			return err
		}
		f, ok := fields.exact[key]
		if !ok {
			// strings.EqualFold is the folding encoding/json matches
			// field names with (simple Unicode folding: "ſ" is "s").
			for name := range fields.exact {
				if strings.EqualFold(name, key) {
					return &Error{fmt.Sprintf("request body: a key in %s differs from the field name %q only by case; keys are case-sensitive", where(at), name)}
				}
			}
			return &Error{fmt.Sprintf("request body: unknown key in %s", where(at))}
		}
		if seen[key] {
			return &Error{fmt.Sprintf("request body: key %q appears more than once in %s", key, where(at))}
		}
		seen[key] = true
		if err := w.value(f, join(at, key), depth); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	return err
}

func (w *walker) mapping(elem reflect.Type, at string, depth int) error {
	seen := map[string]bool{}
	for w.dec.More() {
		key, err := w.key()
		if err != nil {
			return err
		}
		if seen[key] {
			return &Error{fmt.Sprintf("request body: a key appears more than once in %s", where(at))}
		}
		seen[key] = true
		if err := w.value(elem, at+"[…]", depth); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	return err
}

func (w *walker) array(elem reflect.Type, at string, depth int) error {
	for i := 0; w.dec.More(); i++ {
		if err := w.value(elem, at+"["+strconv.Itoa(i)+"]", depth); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // ']'
	return err
}

// rest checks the remainder of an object or array opened by open whose
// contents no type describes: duplicate keys only. It keeps its own
// stack rather than recursing, so depth costs memory, not stack.
func (w *walker) rest(open json.Delim, at string, depth int) error {
	// One entry per open container: the keys seen if it is an object.
	stack := []map[string]bool{nil}
	if open == '{' {
		stack[0] = map[string]bool{}
	}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		if top != nil && w.dec.More() {
			key, err := w.key()
			if err != nil {
				return err
			}
			if top[key] {
				return &Error{fmt.Sprintf("request body: a key appears more than once in an object within %s", where(at))}
			}
			top[key] = true
		}
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue
		}
		switch d {
		case '{', '[':
			if depth+len(stack) > MaxDepth {
				return &Error{fmt.Sprintf("request body nests more than %d levels deep", MaxDepth)}
			}
			var seen map[string]bool
			if d == '{' {
				seen = map[string]bool{}
			}
			stack = append(stack, seen)
		default:
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// duplicateKey reports whether an object in raw, a JSON value the decoder
// has validated, has a key twice. Keys are compared as the decoder would
// see them: one with an escape or a non-ASCII byte is unquoted by
// encoding/json (so "\u0061" is "a", and invalid UTF-8 is U+FFFD).
func duplicateKey(raw []byte) bool {
	if bytes.IndexByte(raw, '{') < 0 {
		return false // no object at all
	}
	type frame struct {
		seen    map[string]bool // nil in an array
		wantKey bool
	}
	var stack []frame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '{':
			stack = append(stack, frame{seen: map[string]bool{}, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := &stack[len(stack)-1]; top.seen != nil {
				top.wantKey = true
			}
		case '"':
			start := i
			plain := true
			for i++; raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
					plain = false
				} else if raw[i] >= 0x80 {
					plain = false
				}
			}
			top := len(stack) - 1
			if top < 0 || !stack[top].wantKey {
				continue
			}
			stack[top].wantKey = false
			key := string(raw[start+1 : i])
			if !plain {
				if err := json.Unmarshal(raw[start:i+1], &key); err != nil {
					return true // cannot be: the decoder validated raw
				}
			}
			if stack[top].seen[key] {
				return true
			}
			stack[top].seen[key] = true
		}
	}
	return false
}

// key reads an object key.
func (w *walker) key() (string, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("object key is not a string") // the token stream refuses this first
	}
	return k, nil
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

func where(at string) string {
	if at == "" {
		return "the top-level object"
	}
	return at
}

// fieldSet is the JSON names of a struct type's fields, as encoding/json
// matches them, and each one's type.
type fieldSet struct {
	exact map[string]reflect.Type
}

var fieldCache sync.Map // reflect.Type → fieldSet

// fieldsOf follows encoding/json's rules for the struct shapes request
// types use: exported fields, named by their json tag or else their Go
// name, "-" skipped, and the fields of an untagged embedded struct
// promoted unless a shallower field has the name.
func fieldsOf(t reflect.Type) fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(fieldSet)
	}
	fs := fieldSet{exact: map[string]reflect.Type{}}
	current := []reflect.Type{t}
	visited := map[reflect.Type]bool{}
	for len(current) > 0 {
		var next []reflect.Type
		found := map[string]reflect.Type{}
		for _, st := range current {
			if visited[st] {
				continue
			}
			visited[st] = true
			for i := range st.NumField() {
				sf := st.Field(i)
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				ft := sf.Type
				if sf.Anonymous {
					et := ft
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
					if name == "" && et.Kind() == reflect.Struct {
						next = append(next, et)
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				if name == "" {
					name = sf.Name
				}
				if _, shallower := fs.exact[name]; shallower {
					continue
				}
				if _, same := found[name]; !same {
					found[name] = ft
				}
			}
		}
		for name, ft := range found {
			fs.exact[name] = ft
		}
		current = next
	}
	fieldCache.Store(t, fs)
	return fs
}
