package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// notOperations are the exported methods of Local that act for no subject,
// so that no policy decides them. Every other exported method must have a
// case in bypassCases; a method missing from both fails the test.
var notOperations = map[string]string{
	"Close": "releases the store's files; it reads and changes no secret",
	"Ready": "the health probe: it reports whether the database and the audit log answer, and reveals nothing stored",
	"LookupToken": "authentication, which comes before authorization: it is how a bearer token becomes the subject " +
		"the policy then decides about (TestLookupToken* cover it)",
	"Scheduled": "returns the scheduler's view of the store, which does nothing itself: each of its calls is an " +
		"operation of Local authorized as SchedulerSubject (TestScheduledCallsAuthorized covers them)",
	"RevokeSelf": "a token's holder ending that token: possession of the token is the authority, as for LookupToken, " +
		"and it can end nothing else (TestRevokeSelf covers it)",
}

// capabilityTypes are the interfaces through which front ends reach Local:
// every method of each is an operation with a case, or is in notOperations.
var capabilityTypes = []reflect.Type{
	reflect.TypeFor[passman.Service](),
	reflect.TypeFor[passman.Connections](),
	reflect.TypeFor[passman.Tokens](),
	reflect.TypeFor[passman.PolicyEvaluator](),
	reflect.TypeFor[passman.Rotator](),
	reflect.TypeFor[passman.LeakResponder](),
	reflect.TypeFor[passman.Readier](),
	reflect.TypeFor[passman.Fingerprints](),
	reflect.TypeFor[rotation.ConnectorSource](),
}

// bypassFixture is what the cases' arguments name: real objects of the
// store, so that a call that slipped past authorization would act.
type bypassFixture struct {
	accessor    string // a live token
	fingerprint string // the current value's fingerprint of app/key
}

// bypassCase is a call, with valid arguments after the context, of one
// operation by a subject the policy refuses everything.
type bypassCase struct {
	args []any
	// hidden marks an operation that answers a refused caller as if
	// nothing matched, rather than with a denial: it must return exactly
	// what it returns for something that does not exist (noMatch's args).
	hidden  bool
	noMatch []any
	// notFound marks an operation that answers a refused caller as it
	// answers a missing path (noMatch's args), and audits the denial.
	notFound bool
}

func bypassCases(f bypassFixture) map[string]bypassCase {
	owner := "mallory"
	period := secret.Duration(1)
	gen := &secret.Rotation{Connection: secret.GeneratedConnection}
	leak := []rotation.LeakFinding{{Path: "app/key", Version: 2, Rule: "passman-managed", File: "app.env", Line: 1}}
	conn := secret.Connection{Name: "run-app", Connector: "exec", Config: map[string]string{"command": "/bin/true"}, AllowedPaths: []string{"app/*"}}
	return map[string]bypassCase{
		// passman.Service
		"Put": {args: []any{"app/key", secret.NewValue([]byte("v")), secret.PutOptions{}}},
		"Get": {args: []any{"app/key", secret.Selector{}}},
		// ValueComparer
		"CompareValue": {args: []any{"app/key", []byte("v")}, notFound: true, noMatch: []any{"app/none", []byte("v")}},
		"Describe":     {args: []any{"app/key"}},
		"List":         {args: []any{secret.ListOptions{Prefix: "app/"}}},
		"Rollback":     {args: []any{"app/key", 1}},
		"Delete":       {args: []any{"app/key", []int(nil)}},
		"Undelete":     {args: []any{"app/key", []int{1}}},
		"Destroy":      {args: []any{"app/key", []int{1}}},
		"Purge":        {args: []any{"app/key"}},
		"UpdateMetadata": {args: []any{"app/key", secret.MetadataUpdate{
			Owner: &owner, RotationPeriod: &period, Rotation: &secret.Rotation{}}}},
		"SetStage":          {args: []any{"app/key", secret.StagePrevious, 1}},
		"LookupFingerprint": {args: []any{f.fingerprint}},
		"VerifyAudit":       {args: []any{}},
		"QueryAudit":        {args: []any{audit.Filter{}, 10}},
		// Connections
		"PutConnection":    {args: []any{conn}},
		"GetConnection":    {args: []any{"run-app"}},
		"ListConnections":  {args: []any{}},
		"DeleteConnection": {args: []any{"run-app"}},
		// Policies
		"PutPolicy":    {args: []any{"mine", "package passman.authz\n\nallow := true\n"}},
		"GetPolicy":    {args: []any{"mine"}},
		"ListPolicies": {args: []any{}},
		"DeletePolicy": {args: []any{"mine"}},
		// Tokens
		"CreateToken": {args: []any{secret.TokenRequest{Identity: "mallory", Claims: map[string]string{"role": "admin"}}}},
		"RevokeToken": {args: []any{f.accessor}},
		"ListTokens":  {args: []any{}},
		"ReapTokens":  {args: []any{time.Duration(0)}},
		// PolicyEvaluator
		"EvalPolicy": {args: []any{policy.DecisionAuthz, json.RawMessage(`{}`), true}},
		// Rotator, LeakResponder, rotation.ConnectorSource
		"Rotate":            {args: []any{"app/key", "manual"}},
		"RotateDue":         {args: []any{rotation.DueOptions{}}},
		"RotationStatus":    {args: []any{""}},
		"SchedulerStatus":   {},
		"Backup":            {args: []any{&bytes.Buffer{}, backup.Options{}}},
		"RespondToLeaks":    {args: []any{leak}},
		"RotationConnector": {args: []any{"app/key", gen}},
		// Fingerprints, and the local export of a scan in process
		"ExportFingerprintPrefixes": {args: []any{"", &bytes.Buffer{}}},
		"ExportFingerprints":        {args: []any{&bytes.Buffer{}}},
		"ConfirmFingerprints": {args: []any{[]string{f.fingerprint}}, hidden: true,
			noMatch: []any{[]string{"00" + f.fingerprint[2:]}}},
		// keys rotate, rewrap and list
		"RotateKeys": {args: []any{}},
		"Rewrap":     {args: []any{}},
		"Keys":       {args: []any{}},
	}
}

// TestNoOperationBypassesAuthorization calls every exported method of Local
// (found by reflection, so a new one without a case fails here) as a subject
// the policy refuses everything: each must fail with ErrPermissionDenied
// and leave denied audit entries only, or, where a refusal is answered as
// absence, answer exactly as for something that does not exist; and
// nothing in the store may change. Compact, a function of its own, is
// refused too.
func TestNoOperationBypassesAuthorization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.Connectors = rotation.Connectors(rotation.ConnectorOptions{ExecAnyProgram: true})
	f := bypassStore(t, opts)
	before := storeState(t, opts)
	keyFile := snapshot(t, opts.Dir)[core.KeyFile]

	cases := bypassCases(f)
	localType := reflect.TypeFor[*core.Local]()
	var names []string
	for m := range localType.Methods() {
		names = append(names, m.Name)
	}
	for _, it := range capabilityTypes {
		for m := range it.Methods() {
			if !slices.Contains(names, m.Name) {
				t.Errorf("%s.%s is not a method of Local", it, m.Name)
			}
		}
	}
	for _, name := range names {
		_, isCase := cases[name]
		_, exempt := notOperations[name]
		switch {
		case isCase && exempt:
			t.Errorf("%s is both a case and not an operation", name)
		case !isCase && !exempt:
			t.Errorf("Local.%s has no case in bypassCases: add a call that a refusing policy must deny, or say in notOperations why no policy decides it", name)
		}
	}
	for name := range cases {
		if !slices.Contains(names, name) {
			t.Errorf("case %s names no method of Local", name)
		}
	}
	for name := range notOperations {
		if !slices.Contains(names, name) {
			t.Errorf("notOperations names %s, no method of Local", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	refused := opts
	refused.Authorizer = denyAll{}
	l := open(t, refused)
	slices.Sort(names)
	for _, name := range names {
		c, ok := cases[name]
		if !ok {
			continue
		}
		seen := len(entries(t, opts))
		outs := callMethod(t, l, name, c.args)
		err := outs[len(outs)-1]
		for _, a := range c.args {
			if b, ok := a.(*bytes.Buffer); ok && b.Len() > 0 {
				t.Errorf("%s wrote %d bytes for a refused caller", name, b.Len())
			}
		}
		added := entries(t, opts)[seen:]
		if c.hidden {
			want := callMethod(t, l, name, c.noMatch)
			if !reflect.DeepEqual(outs, want) {
				t.Errorf("%s answers a refused caller %v, and %v for no match", name, outs, want)
			}
			if len(added) != 1 || added[0].Outcome == audit.OutcomeDenied {
				t.Errorf("%s: audit entries %+v, want one", name, added)
			}
			continue
		}
		if c.notFound {
			if e, _ := err.(error); !errors.Is(e, secret.ErrNotFound) {
				t.Errorf("%s under a policy that refuses everything: %v, want not found", name, err)
			}
			if want := callMethod(t, l, name, c.noMatch); !reflect.DeepEqual(outs, want) {
				t.Errorf("%s answers a refused caller %v, and %v for a missing path", name, outs, want)
			}
			checkDenied(t, name, added)
			continue
		}
		if e, _ := err.(error); !errors.Is(e, secret.ErrPermissionDenied) {
			t.Errorf("%s under a policy that refuses everything: %v", name, err)
		}
		checkDenied(t, name, added)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	seen := len(entries(t, opts))
	if _, err := core.Compact(ctx, refused); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("Compact under a policy that refuses everything: %v", err)
	}
	checkDenied(t, "Compact", entries(t, opts)[seen:])

	if after := snapshot(t, opts.Dir)[core.KeyFile]; !bytes.Equal(keyFile, after) {
		t.Error("the key file changed under a policy that refuses everything")
	}
	if after := storeState(t, opts); after != before {
		t.Errorf("the store changed under a policy that refuses everything:\nbefore %s\nafter  %s", before, after)
	}
}

// checkDenied requires that a refused operation left at least one audit
// entry, each of them a denial carrying the policy's decision.
func checkDenied(t *testing.T, name string, added []audit.Entry) {
	t.Helper()
	if len(added) == 0 {
		t.Errorf("%s: refused without an audit entry", name)
	}
	for _, e := range added {
		if e.Outcome != audit.OutcomeDenied || e.ErrorClass != "permission_denied" || e.Decision == nil || e.Decision.Allow || e.Decision.Revision != "sha256:test" {
			t.Errorf("%s: audit entry %d is not a denial with the decision: %+v", name, e.Seq, e)
		}
	}
}

// callMethod calls l's method name with ctx and args, and returns its
// results as interfaces. The call goes through reflection so that a case
// cannot run some other method than the one it names.
func callMethod(t *testing.T, l *core.Local, name string, args []any) []any {
	t.Helper()
	m := reflect.ValueOf(l).MethodByName(name)
	mt := m.Type()
	if mt.NumIn() != len(args)+1 || mt.In(0) != reflect.TypeFor[context.Context]() {
		t.Fatalf("%s%s: the case gives a context and %d arguments", name, mt, len(args))
	}
	if mt.NumOut() == 0 || mt.Out(mt.NumOut()-1) != reflect.TypeFor[error]() {
		t.Fatalf("%s%s does not return an error", name, mt)
	}
	in := []reflect.Value{reflect.ValueOf(context.Background())}
	for i, a := range args {
		want := mt.In(i + 1)
		v := reflect.ValueOf(a)
		switch {
		case a == nil:
			v = reflect.Zero(want)
		case !v.Type().AssignableTo(want):
			t.Fatalf("%s: argument %d is a %s, want %s", name, i+1, v.Type(), want)
		}
		in = append(in, v)
	}
	var out []any
	for _, v := range m.Call(in) {
		out = append(out, v.Interface())
	}
	return out
}

// bypassStore fills opts' store, as its creator, with what the cases act
// on: app/key (two versions, a generated rotation due at once), a
// connection, a live token and a revoked one old enough to reap.
func bypassStore(t *testing.T, opts core.Options) bypassFixture {
	t.Helper()
	ctx := context.Background()
	l := open(t, opts)
	defer func() {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	var f bypassFixture
	conn := secret.Connection{Name: "run-app", Connector: "exec", Config: map[string]string{"command": "/bin/true"}, AllowedPaths: []string{"app/*"}}
	if _, err := l.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PutPolicy(ctx, "mine", "package passman.authz\n\nreasons contains \"mine\" if input.action == \"none\"\n"); err != nil {
		t.Fatal(err)
	}
	period := secret.Duration(1)
	md := &secret.MetadataUpdate{RotationPeriod: &period, Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
	for i, v := range []string{"first value", "second value"} {
		opt := secret.PutOptions{}
		if i == 0 {
			opt.Metadata = md
		}
		vi, err := l.Put(ctx, "app/key", secret.NewValue([]byte(v)), opt)
		if err != nil {
			t.Fatal(err)
		}
		f.fingerprint = vi.Fingerprint
	}
	if len(f.fingerprint) != 64 {
		t.Fatalf("fingerprint %q", f.fingerprint)
	}
	_, live, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	f.accessor = live.Accessor
	_, old, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeToken(ctx, old.Accessor); err != nil {
		t.Fatal(err)
	}
	return f
}

// storeState is everything a caller can learn of the store, as its
// creator, in one string: secrets with every version's value,
// connections, tokens and keys.
func storeState(t *testing.T, opts core.Options) string {
	t.Helper()
	ctx := context.Background()
	l := open(t, opts)
	defer l.Close()
	state := map[string]any{}
	page, err := l.List(ctx, secret.ListOptions{WithMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		s, err := l.Describe(ctx, e.Path)
		if err != nil {
			t.Fatal(err)
		}
		state[e.Path] = s
		for _, v := range s.Versions {
			if v.State == secret.StateDestroyed {
				continue
			}
			got, err := l.Get(ctx, e.Path, secret.Selector{Version: v.Version})
			if err != nil {
				t.Fatal(err)
			}
			state[e.Path+"@"+strconv.Itoa(v.Version)] = string(got.Value.Reveal())
		}
	}
	for name, get := range map[string]func() (any, error){
		"connections": func() (any, error) { return l.ListConnections(ctx) },
		"tokens":      func() (any, error) { return l.ListTokens(ctx) },
		"keys":        func() (any, error) { return l.Keys(ctx) },
		"policies":    func() (any, error) { return l.ListPolicies(ctx) },
		"policy":      func() (any, error) { return l.GetPolicy(ctx, "mine") },
	} {
		v, err := get()
		if err != nil {
			t.Fatal(err)
		}
		state[name] = v
	}
	b, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
