package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// tenantPolicy gives each team read, write and list on its own paths; a
// team's lead may also configure rotation there, its operator rotate.
const tenantPolicy = `package passman.authz

team := split(input.subject.id, ".")[0]

role := split(input.subject.id, ".")[1]

mine if startswith(input.path, sprintf("%s/", [team]))

allow if {
	input.subject.kind == "token"
	input.action in {"read", "write", "list"}
	mine
}

allow if {
	input.subject.kind == "token"
	input.action == "list"
	object.get(input, "path", "") == ""
}

allow if {
	input.subject.kind == "token"
	role == "lead"
	input.action == "configure_rotation"
	mine
}

allow if {
	input.subject.kind == "token"
	role == "ops"
	input.action == "rotate"
	mine
}
`

// tenantStore is a store whose creator (alice, admin) defined an exec
// connection for team-a's secrets; ran reports the program's runs.
func tenantStore(t *testing.T) (l *core.Local, as func(id string) context.Context, ran func() []string) {
	t.Helper()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "tenants.rego"), []byte(tenantPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Connectors = rotation.Connectors(rotation.ConnectorOptions{ExecAnyProgram: true})
	opts.Getenv = func(k string) string { return map[string]string{"SERVER_ONLY": "server-env-canary-91"}[k] }
	l = open(t, opts)
	t.Cleanup(func() { l.Close() })
	log := filepath.Join(t.TempDir(), "ran")
	args, _ := json.Marshal([]string{"-c", `echo "$1" >> ` + log, "sh"})
	conn := secret.Connection{Name: "run-a", Connector: "exec", Config: map[string]string{"command": "/bin/sh", "args": string(args)}, AllowedPaths: []string{"team-a/*"}}
	if _, err := l.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"team-a/app/y", "team-b/db/password"} {
		if _, err := l.Put(ctx, p, secret.NewValue([]byte("initial value of "+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	as = func(id string) context.Context {
		return core.WithSubject(ctx, policy.Subject{ID: id, Kind: policy.KindToken})
	}
	ran = func() []string {
		b, err := os.ReadFile(log)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(b))
	}
	return l, as, ran
}

// TestWriterCannotConfigureRotation: write on a secret does not give its
// rotation settings; the spec is its own action, with the spec in the
// policy input.
func TestWriterCannotConfigureRotation(t *testing.T) {
	t.Parallel()
	l, as, ran := tenantStore(t)
	spec := &secret.Rotation{Connection: "run-a"}
	period := secret.Duration(time.Hour)
	for name, u := range map[string]secret.MetadataUpdate{
		"spec":            {Rotation: spec},
		"period":          {RotationPeriod: &period},
		"spec and owner":  {Rotation: spec, Owner: new(string)},
		"status (revoke)": {RotationStatus: &secret.RotationStatus{State: secret.RotationSucceeded, RevokeVersion: 1, RevokeAfter: time.Unix(1, 0)}},
	} {
		if _, err := l.UpdateMetadata(as("team-a.dev"), "team-a/app/y", u); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("%s by a writer: %v", name, err)
		}
	}
	if _, err := l.Put(as("team-a.dev"), "team-a/app/new", secret.NewValue([]byte("v")), secret.PutOptions{Metadata: &secret.MetadataUpdate{Rotation: spec}}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("put with a spec by a writer: %v", err)
	}
	if _, err := l.Describe(context.Background(), "team-a/app/new"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("the refused put wrote the secret: %v", err)
	}
	// The writer may still change plain fields, and the lead the spec.
	owner := "team-a"
	if _, err := l.UpdateMetadata(as("team-a.dev"), "team-a/app/y", secret.MetadataUpdate{Owner: &owner}); err != nil {
		t.Errorf("owner by a writer: %v", err)
	}
	if _, err := l.UpdateMetadata(as("team-a.lead"), "team-a/app/y", secret.MetadataUpdate{Rotation: spec}); err != nil {
		t.Errorf("spec by the lead: %v", err)
	}
	if got := ran(); len(got) != 0 {
		t.Errorf("the program ran: %v", got)
	}
}

// TestSpecCannotCarryWhatTheServerActsOn: a spec is a connection's name
// and its params; the connection decides the program, credentials and
// endpoints, and lets only its allowed paths use it.
func TestSpecCannotCarryWhatTheServerActsOn(t *testing.T) {
	t.Parallel()
	l, as, _ := tenantStore(t)
	lead := as("team-b.lead")
	for name, tc := range map[string]struct {
		spec secret.Rotation
		want error
	}{
		// Answered as a missing connection would be: what connections
		// exist for other paths is not the caller's to learn.
		"another team's connection": {secret.Rotation{Connection: "run-a"}, secret.ErrNotFound},
		"a program of its own":      {secret.Rotation{Connection: "run-a", Params: map[string]string{"command": "/bin/sh"}}, secret.ErrNotFound},
		"env reference":             {secret.Rotation{Connection: "generated", Params: map[string]string{"token": "env:SERVER_ONLY"}}, secret.ErrInvalidArgument},
		"secret reference":          {secret.Rotation{Connection: "generated", Params: map[string]string{"token": "secret:team-a/app/y"}}, secret.ErrInvalidArgument},
		"legacy form":               {secret.Rotation{LegacyConnector: "exec", LegacyConfig: map[string]string{"command": "/bin/sh"}}, secret.ErrInvalidArgument},
		"missing connection":        {secret.Rotation{Connection: "nosuch"}, secret.ErrNotFound},
	} {
		spec := tc.spec
		if _, err := l.UpdateMetadata(lead, "team-b/db/password", secret.MetadataUpdate{Rotation: &spec}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if md, err := l.Describe(context.Background(), "team-b/db/password"); err != nil || md.Metadata.Rotation != nil {
		t.Fatalf("a refused spec was kept: %+v %v", md.Metadata.Rotation, err)
	}
	// Connections are an administrator's: a lead can neither make nor read one.
	if _, err := l.PutConnection(lead, secret.Connection{Name: "mine", Connector: "exec", Config: map[string]string{"command": "/bin/sh"}, AllowedPaths: []string{"team-b/*"}}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("a lead made a connection: %v", err)
	}
	if _, err := l.GetConnection(lead, "run-a"); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("a lead read a connection: %v", err)
	}
}

// TestRotationAuthorizedBeforeAnySideEffect: a caller without rotate who
// asks for a rotation, or runs rotate-due, changes nothing anywhere: the
// connector never runs, no version is written, nothing is revoked.
func TestRotationAuthorizedBeforeAnySideEffect(t *testing.T) {
	t.Parallel()
	l, as, ran := tenantStore(t)
	ctx := context.Background()
	grace := secret.Duration(time.Minute)
	if _, err := l.UpdateMetadata(as("team-a.lead"), "team-a/app/y", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "run-a", GracePeriod: grace}}); err != nil {
		t.Fatal(err)
	}
	// The administrator rotates once, so a revocation of v1 is scheduled.
	if _, err := rotation.NewRunner(l, l).Rotate(ctx, "team-a/app/y", "manual"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ran(), " "); got != "set test" {
		t.Fatalf("admin rotation ran %q", got)
	}
	before, err := l.Describe(ctx, "team-a/app/y")
	if err != nil {
		t.Fatal(err)
	}
	e := rotation.NewRunner(l, l)
	e.Now = func() time.Time { return time.Now().Add(time.Hour) } // past the grace period
	for _, who := range []string{"team-a.dev", "team-a.lead", "team-b.ops"} {
		if _, err := e.Rotate(as(who), "team-a/app/y", "manual"); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("rotate by %s: %v", who, err)
		}
		rep, err := e.RotateDue(as(who), rotation.DueOptions{})
		if err != nil || len(rep.Revoked) != 0 || len(rep.Rotated) != 0 {
			t.Errorf("rotate-due by %s: %+v %v", who, rep, err)
		}
		if _, err := e.Revoke(as(who), "team-a/app/y", true); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("revoke by %s: %v", who, err)
		}
	}
	if got := strings.Join(ran(), " "); got != "set test" {
		t.Errorf("refused callers made the program run: %q", got)
	}
	after, err := l.Describe(ctx, "team-a/app/y")
	if err != nil || after.CurrentVersion != before.CurrentVersion || len(after.Versions) != len(before.Versions) {
		t.Errorf("refused callers changed the secret: v%d -> v%d, %v", before.CurrentVersion, after.CurrentVersion, err)
	}
	// team-a's operator may: the revocation runs now.
	rep, err := e.RotateDue(as("team-a.ops"), rotation.DueOptions{Prefix: "team-a/"})
	if err != nil || len(rep.Revoked) != 1 {
		t.Fatalf("rotate-due by the operator: %+v %v", rep, err)
	}
	if got := strings.Join(ran(), " "); got != "set test revoke" {
		t.Errorf("operator's rotate-due ran %q", got)
	}
}

// TestConnectionResolvesWithItsOwnAuthority: a connection's secret:PATH
// credential is read as the connection's (audited so), not as the caller,
// who needs no read on it; a spec can only name the connection.
func TestConnectionResolvesWithItsOwnAuthority(t *testing.T) {
	t.Parallel()
	l, as, _ := tenantStore(t)
	ctx := context.Background()
	if _, err := l.Put(ctx, "ops/hook-key", secret.NewValue([]byte("hook-signing-key-canary-5521")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r := connResolver(t, l, as("team-a.ops"))
	v, err := r.Resolve(ctx, "secret:ops/hook-key")
	if err != nil || string(v.Reveal()) != "hook-signing-key-canary-5521" {
		t.Fatalf("resolve: %v", err)
	}
	if v, err := r.Resolve(ctx, "env:SERVER_ONLY"); err != nil || string(v.Reveal()) != "server-env-canary-91" {
		t.Fatalf("resolve env: %v", err)
	}
	var resolved []audit.Entry
	for _, e := range auditEntries(t, l) {
		if e.Action == core.ActionConnectionResolve {
			resolved = append(resolved, e)
		}
	}
	if len(resolved) != 1 || resolved[0].Path != "ops/hook-key" || resolved[0].Details["connection"] != "run-a" || resolved[0].Actor != "team-a.ops" {
		t.Errorf("resolution audited as %+v", resolved)
	}
	// team-a's operator cannot read the key itself.
	if _, err := l.Get(as("team-a.ops"), "ops/hook-key", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("operator read the connection's key: %v", err)
	}
}

// connResolver is the resolver of connection run-a, for a caller.
func connResolver(t *testing.T, l *core.Local, ctx context.Context) rotation.Resolver {
	t.Helper()
	return ctxResolver{ctx: ctx, r: core.ConnectionResolver(l, "run-a")}
}

// ctxResolver resolves in the caller's context, as a rotation step does.
type ctxResolver struct {
	ctx context.Context
	r   rotation.Resolver
}

func (c ctxResolver) Resolve(_ context.Context, ref string) (secret.Value, error) {
	return c.r.Resolve(c.ctx, ref)
}

func auditEntries(t *testing.T, l *core.Local) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := audit.Read(context.Background(), core.AuditPath(l), audit.Filter{}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyMigration: a migration creates its connections and rewrites
// the specs it planned from, as an administrator; a team lead cannot apply
// one; a spec that changed since the plan, or a connection name taken
// since, is reported and the rest still moves.
func TestApplyMigration(t *testing.T) {
	t.Parallel()
	l, as, _ := tenantStore(t)
	ctx := context.Background()
	for _, p := range []string{"team-a/app/z", "team-a/app/w"} {
		if _, err := l.Put(ctx, p, secret.NewValue([]byte("value of "+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hook := func(name string, paths ...string) *secret.Connection {
		return &secret.Connection{Name: name, Connector: "webhook", Config: map[string]string{"url": "https://hooks.example/a", "signing_key": "env:K"}, AllowedPaths: paths}
	}
	// No API writes a spec in the old form any more; y's plan starts from
	// the spec it has now, which is what ApplyMigration compares.
	if _, err := l.UpdateMetadata(ctx, "team-a/app/y", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "generated"}}); err != nil {
		t.Fatal(err)
	}
	m := rotation.Migration{Groups: []rotation.MigrationGroup{
		{Connection: hook("hook-1", "team-a/app/y"), Secrets: []rotation.SpecMove{{Path: "team-a/app/y", To: secret.Rotation{Connection: "hook-1", Length: 30}}}},
		{Connection: hook("run-a", "team-a/app/z"), Secrets: []rotation.SpecMove{{Path: "team-a/app/z", To: secret.Rotation{Connection: "run-a"}}}},
		{Connection: hook("hook-2", "team-a/app/w"), Secrets: []rotation.SpecMove{{Path: "team-a/app/w", From: secret.Rotation{LegacyConnector: "webhook"}, To: secret.Rotation{Connection: "hook-2"}}}},
	}}
	m.Groups[0].Secrets[0].From = secret.Rotation{Connection: "generated"}
	if rep, err := rotation.ApplyMigration(as("team-a.lead"), l, m); !errors.Is(err, secret.ErrPermissionDenied) || len(rep.Moved) != 0 {
		t.Fatalf("a lead applied a migration: %+v %v", rep, err)
	}
	rep, err := rotation.ApplyMigration(ctx, l, m)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Moved, []string{"team-a/app/y"}) {
		t.Errorf("moved %v", rep.Moved)
	}
	failed := map[string]string{}
	for _, f := range rep.Failed {
		failed[f.Connection+f.Path] = f.Error
	}
	if !strings.Contains(failed["run-a"], "exists now") || !strings.Contains(failed["team-a/app/w"], "changed since the plan") {
		t.Errorf("failures %v", failed)
	}
	if _, err := l.GetConnection(ctx, "hook-2"); err != nil {
		t.Errorf("the third group's connection was not created after the second failed: %v", err)
	}
}
