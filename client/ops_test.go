package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestRotationRoundTrip rotates, reports and exports over real TLS.
func TestRotationRoundTrip(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	if _, err := e.Local.Put(ctx, "app/db", secret.NewValue([]byte("first value")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Local.UpdateMetadata(ctx, "app/db", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, e.Tokens[servertest.Root])

	res := must[rotation.Result](t, "rotate")(c.Rotate(ctx, "app/db", "manual"))
	if res.State != secret.RotationSucceeded || res.From != 1 || res.To != 2 {
		t.Fatalf("rotate: %+v", res)
	}
	if _, err := c.Rotate(ctx, "app/missing", "manual"); err == nil {
		t.Error("rotating a missing secret succeeded")
	} else {
		wantErr(t, "rotate missing", err, secret.ErrNotFound)
	}
	_, err := newClient(t, e, e.Tokens[servertest.Reader]).Rotate(ctx, "app/db", "manual")
	wantErr(t, "rotate as reader", err, secret.ErrPermissionDenied)

	entries := must[[]rotation.Entry](t, "status")(c.RotationStatus(ctx, "app/"))
	if len(entries) != 1 || entries[0].Path != "app/db" || entries[0].Status == nil || entries[0].Status.State != secret.RotationSucceeded {
		t.Errorf("status: %+v", entries)
	}
	rep := must[rotation.DueReport](t, "rotate due")(c.RotateDue(ctx, rotation.DueOptions{Prefix: "app/", Workers: 2}))
	if rep.Due != 0 || len(rep.Failed) != 0 {
		t.Errorf("rotate due: %+v", rep)
	}

	var buf bytes.Buffer
	f := must[fpindex.File](t, "export")(c.ExportFingerprintPrefixes(ctx, "app/", &buf))
	ix, err := fpindex.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// "first value" is too weak to export; the generated v2 is not.
	if f.Exported != 1 || f.Withheld != 1 || f.DetectionKey != nil || ix.Len() != 1 || ix.Local() || ix.StoreID() == "" {
		t.Errorf("export: %+v, index of %d", f, ix.Len())
	}
	// The rotated value is generated, so strong: the store confirms it.
	v, err := e.Local.Get(ctx, "app/db", secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	fps := []string{v.Info.Fingerprint, strings.Repeat("0", 64)}
	conf := must[fpindex.Confirmation](t, "confirm")(c.ConfirmFingerprints(ctx, fps))
	if conf.StoreID != ix.StoreID() || len(conf.Matches) != 1 || len(conf.Matches[v.Info.Fingerprint]) != 1 {
		t.Errorf("confirm: %+v", conf)
	}
	// More than one request carries: the client splits them.
	many := make([]string, fpindex.MaxConfirm+5)
	for i := range many {
		many[i] = fmt.Sprintf("%064x", i)
	}
	many[len(many)-1] = v.Info.Fingerprint
	if conf := must[fpindex.Confirmation](t, "confirm many")(c.ConfirmFingerprints(ctx, many)); len(conf.Matches) != 1 {
		t.Errorf("confirm of %d: %+v", len(many), conf)
	}
	_, err = newClient(t, e, e.Tokens[servertest.Nobody]).ExportFingerprintPrefixes(ctx, "", &buf)
	wantErr(t, "export as nobody", err, secret.ErrPermissionDenied)
}

// TestRespondToLeaks has the server respond to leaks: results in order,
// the first failure as an error of its class, and more leaks than one
// request may carry sent in several.
func TestRespondToLeaks(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	if _, err := e.Local.Put(ctx, "app/db", secret.NewValue([]byte("leaked value")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Local.UpdateMetadata(ctx, "app/db", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, e.Tokens[servertest.Root])

	leaks := []rotation.LeakFinding{{Path: "app/db", Version: 1, Rule: "passman-managed", File: "app.env", Line: 1}}
	for i := range api.MaxRespondLeaks {
		leaks = append(leaks, rotation.LeakFinding{Path: fmt.Sprintf("app/missing-%d", i), Version: 1, File: "x.env"})
	}
	results, err := c.RespondToLeaks(ctx, leaks)
	wantErr(t, "respond", err, secret.ErrNotFound)
	if len(results) != len(leaks) {
		t.Fatalf("%d results for %d leaks", len(results), len(leaks))
	}
	if r := results[0]; r.Path != "app/db" || r.Rotation == nil || r.Rotation.To != 2 || !r.Revoked {
		t.Errorf("app/db: %+v", r)
	}
	if r := results[len(results)-1]; r.Path != fmt.Sprintf("app/missing-%d", api.MaxRespondLeaks-1) || !strings.Contains(r.Error, "not found") {
		t.Errorf("last result: %+v", r)
	}
	if n := strings.Count(string(e.Log.Bytes()), `"route":"rotation.respond"`); n != 2 {
		t.Errorf("%d respond requests, want 2", n)
	}

	results, err = c.RespondToLeaks(ctx, leaks[:1])
	if err != nil || len(results) != 1 || results[0].Rotation != nil {
		t.Errorf("the same leak again: %+v, %v", results, err)
	}
	if results, err := c.RespondToLeaks(ctx, nil); results != nil || err != nil {
		t.Errorf("no leaks: %+v, %v", results, err)
	}
	_, err = c.RespondToLeaks(ctx, []rotation.LeakFinding{{Path: "app/../db", Version: 1}})
	wantErr(t, "respond to an invalid leak", err, secret.ErrInvalidPath)
}

// TestEvalPolicy evaluates the server's policies: the result is the
// server's JSON, as its engine produced it.
func TestEvalPolicy(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	input := json.RawMessage(`{"subject":{"id":"ci","kind":"token","claims":{"role":"root"}},"action":"read","path":"app/x","store":{"created_by":"admin"}}`)
	res := must[policy.EvalResult](t, "eval")(newClient(t, e, e.Tokens[servertest.Root]).EvalPolicy(ctx, policy.DecisionAuthz, input, true))
	raw, ok := res.Result.(json.RawMessage)
	var d policy.Decision
	if !ok || json.Unmarshal(raw, &d) != nil || !d.Allow || len(res.Explanation) == 0 {
		t.Errorf("eval: %s, %d lines of explanation", raw, len(res.Explanation))
	}
	_, err := newClient(t, e, e.Tokens[servertest.Reader]).EvalPolicy(ctx, policy.DecisionAuthz, input, false)
	wantErr(t, "eval as reader", err, secret.ErrPermissionDenied)
	_, err = newClient(t, e, e.Tokens[servertest.Root]).EvalPolicy(ctx, "nope", input, false)
	wantErr(t, "eval of an unknown decision", err, secret.ErrInvalidArgument)
}

// TestEvalPolicyLargeInput: an input of the documented maximum reaches a
// server with its default limits, even one full of the characters
// encoding/json would escape as HTML (six bytes each).
func TestEvalPolicyLargeInput(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	const head, tail = `{"source":"store","secrets":[{"path":"app/x","description":"`, `"}]}`
	pad := strings.Repeat("<&>", (api.MaxPolicyInput-len(head)-len(tail))/3)
	input := json.RawMessage(head + pad + strings.Repeat("x", api.MaxPolicyInput-len(head)-len(tail)-len(pad)) + tail)
	if len(input) != api.MaxPolicyInput {
		t.Fatalf("input is %d bytes", len(input))
	}
	if _, err := newClient(t, e, e.Tokens[servertest.Root]).EvalPolicy(context.Background(), policy.DecisionLint, input, false); err != nil {
		t.Errorf("eval of a %d-byte input: %v", len(input), err)
	}
}
