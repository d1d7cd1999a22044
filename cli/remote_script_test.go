package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// TestScriptsRemote runs the scripts of TestScripts again, each against a
// real server of its own through PASSMAN_ADDR, with the same assertions:
// a script guards with [!remote] only what needs the store's files, and
// says with [remote] where a server legitimately answers differently.
func TestScriptsRemote(t *testing.T) {
	t.Parallel()
	testscript.Run(t, scriptParams(true, startScriptServer))
}

// scriptIdentity is the identity of the token the scripts use, so audit
// entries of remote commands name it as their actor.
const scriptIdentity = "script-root"

// minCheckedValue is the length below which a stored value is not looked
// for in the server's log: the scripts' short values ("v", "hello") are
// words a log line may hold by chance.
const minCheckedValue = 8

// startScriptServer starts a server on loopback with TLS for one script,
// on a new store whose policy lets the script's token do everything, and
// points the script's passman at it. When the script ends, the server's
// request log must show that it was used and hold no secret.
func startScriptServer(e *testscript.Env) error {
	ctx := context.Background()
	// Outside $WORK, so nothing a script does to its files reaches the
	// server's store.
	dir, err := os.MkdirTemp("", "passman-script-server-")
	if err != nil {
		return err
	}
	e.Defer(func() { os.RemoveAll(dir) })
	polDir := filepath.Join(dir, "policies")
	if err := os.Mkdir(polDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(polDir, "root.rego"), []byte(server.RootPolicy), 0o600); err != nil {
		return err
	}
	opts := core.Options{Dir: filepath.Join(dir, "store"), Actor: "server-admin", AuditSync: audit.SyncWrite, PolicyDir: polDir}
	if _, err := core.Init(ctx, opts); err != nil {
		return err
	}
	local, err := core.Open(ctx, opts)
	if err != nil {
		return err
	}
	e.Defer(func() {
		if err := local.Close(); err != nil {
			e.T().Fatal("close the server's store: ", err)
		}
	})
	// The store's creator is admin by the bundled policy, so it may create
	// the first token, as an operator does before starting a server.
	token, _, err := local.CreateToken(ctx, secret.TokenRequest{Identity: scriptIdentity, Claims: map[string]string{"role": "root"}})
	if err != nil {
		return err
	}

	reqLog := &servertest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(reqLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewUnstartedServer(server.New(local, server.Options{Logger: logger}))
	srv.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	srv.StartTLS()
	planted := new([]string)
	e.Values[plantedKey{}] = planted
	// Deferred calls run last first: the server stops, then its log is
	// checked (reading the store), then the store closes.
	e.Defer(func() {
		if err := checkServerLog(ctx, e.T(), reqLog.Bytes(), local, append([]string{token}, *planted...)); err != nil {
			e.T().Fatal(err)
		}
	})
	e.Defer(srv.Close)

	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	e.Setenv(envAddr, srv.URL)
	e.Setenv(envToken, token)
	e.Setenv(envCACert, caFile)
	return nil
}

// checkServerLog fails a script that never reached the server, or whose
// server logged a secret: the token, a planted value or a value the
// store holds, as it is or in base64 as requests carry values.
func checkServerLog(ctx context.Context, t testscript.T, log []byte, local *core.Local, secrets []string) error {
	// A skipped script ran no commands, and one that failed may have
	// stopped before its first.
	tb, ok := t.(testing.TB)
	if len(log) == 0 && !(ok && (tb.Skipped() || tb.Failed())) {
		return errors.New("the server logged no request: did the script's commands use a local store?")
	}
	values, err := storedValues(ctx, local)
	if err != nil {
		return err
	}
	for _, v := range values {
		if len(bytes.TrimSpace(v)) >= minCheckedValue {
			secrets = append(secrets, string(bytes.TrimSpace(v)), base64.StdEncoding.EncodeToString(v))
		}
	}
	for _, s := range secrets {
		if bytes.Contains(log, []byte(s)) {
			return fmt.Errorf("the server's request log holds a secret (%d bytes)", len(s))
		}
	}
	return nil
}

// storedValues reads every readable version of every secret in the store.
// Deleted and destroyed versions cannot be read, and are left out.
func storedValues(ctx context.Context, local *core.Local) ([][]byte, error) {
	var values [][]byte
	opts := secret.ListOptions{Limit: secret.MaxListLimit}
	for {
		page, err := local.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list the server's secrets: %w", err)
		}
		for _, ent := range page.Entries {
			s, err := local.Describe(ctx, ent.Path)
			if err != nil {
				return nil, fmt.Errorf("describe %s: %w", ent.Path, err)
			}
			for _, v := range s.Versions {
				if v.State != secret.StateActive {
					continue
				}
				got, err := local.Get(ctx, ent.Path, secret.Selector{Version: v.Version})
				if err != nil {
					return nil, fmt.Errorf("read %s v%d: %w", ent.Path, v.Version, err)
				}
				values = append(values, got.Value.Reveal())
			}
		}
		if page.Next == "" {
			return values, nil
		}
		opts.After = page.Next
	}
}
