package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// Audit actions of connections.
const (
	ActionConnectionPut    = "connection.put"
	ActionConnectionGet    = "connection.get"
	ActionConnectionList   = "connection.list"
	ActionConnectionDelete = "connection.delete"
	// ActionConnectionUse is a rotation step binding a secret to its
	// connection, as the caller, who needs rotate on the secret.
	ActionConnectionUse = "connection.use"
	// ActionConnectionResolve is a connection reading a secret:PATH
	// credential reference, with the connection's authority.
	ActionConnectionResolve = "connection.resolve"
)

// connectionsMeta names the store metadata record holding every connection,
// by name. Connections are few and written by administrators, so one
// record keeps changes atomic and listing trivial.
const connectionsMeta = "connections"

// MaxConnections bounds how many connections a store holds.
const MaxConnections = 1000

// PutConnection creates or replaces a connection. Only an administrator
// may: a connection decides what rotations run and with which credentials.
// It is checked against its connector first; an exec connection must name
// a program this process allows (Options.Connectors). The audit entry
// names the connection and its connector, never its config.
func (l *Local) PutConnection(ctx context.Context, c secret.Connection) (secret.Connection, error) {
	o := op{action: ActionConnectionPut, perm: policy.ActionAdmin}
	if secret.ValidateConnectionName(c.Name) == nil {
		o.details = map[string]string{"connection": c.Name}
	}
	if o.details != nil && secret.ValidateConnectionName(c.Connector) == nil {
		o.details["connector"] = c.Connector
	}
	now, who := l.opts.now().UTC(), l.subject(ctx).ID
	var out secret.Connection
	err := l.changeRecords(ctx, o, func(tx store.Tx) error {
		// After authorization: what this process's connectors accept is
		// an administrator's business.
		if err := l.connectors().Check(c); err != nil {
			return err
		}
		all, err := readConnections(tx)
		if err != nil {
			return err
		}
		next := c
		next.Config = maps.Clone(c.Config)
		next.AllowedPaths = slices.Clone(c.AllowedPaths)
		next.AllowedRoles = slices.Clone(c.AllowedRoles)
		next.AllowedNames = slices.Clone(c.AllowedNames)
		next.UpdatedAt, next.UpdatedBy = now, who
		if old, ok := all[c.Name]; ok {
			next.CreatedAt, next.CreatedBy = old.CreatedAt, old.CreatedBy
		} else {
			if len(all) >= MaxConnections {
				return fmt.Errorf("%w: a store holds at most %d connections", secret.ErrInvalidArgument, MaxConnections)
			}
			next.CreatedAt, next.CreatedBy = now, who
		}
		all[c.Name] = next
		out = next
		return writeConnections(tx, all)
	}, nil)
	return out, err
}

// GetConnection returns a connection (admin: its config names where its
// credentials are).
func (l *Local) GetConnection(ctx context.Context, name string) (secret.Connection, error) {
	o := op{action: ActionConnectionGet, perm: policy.ActionAdmin, details: map[string]string{}}
	if err := secret.ValidateConnectionName(name); err != nil {
		return secret.Connection{}, l.deny(ctx, o, nil, err)
	}
	o.details["connection"] = name
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return secret.Connection{}, err
	}
	c, err := l.connection(ctx, name)
	if err := l.read(ctx, audit.Entry{Action: o.action, Decision: dec, Details: o.details}, err); err != nil {
		return secret.Connection{}, err
	}
	return c, nil
}

// ListConnections returns every connection, sorted by name, the built-in
// one included.
func (l *Local) ListConnections(ctx context.Context) ([]secret.Connection, error) {
	dec, err := l.authorize(ctx, op{action: ActionConnectionList, perm: policy.ActionAdmin})
	if err != nil {
		return nil, err
	}
	var all map[string]secret.Connection
	err = l.db.View(ctx, func(tx store.Tx) error {
		var err error
		all, err = readConnections(tx)
		return err
	})
	if err := l.read(ctx, audit.Entry{Action: ActionConnectionList, Decision: dec}, err); err != nil {
		return nil, err
	}
	g, _ := rotation.BuiltinConnection(secret.GeneratedConnection)
	out := []secret.Connection{g}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		out = append(out, all[name])
	}
	return out, nil
}

// DeleteConnection removes a connection. Secrets whose spec names it stop
// rotating (their rotations fail, saying the connection is gone) until an
// administrator creates it again or their specs change.
func (l *Local) DeleteConnection(ctx context.Context, name string) error {
	o := op{action: ActionConnectionDelete, perm: policy.ActionAdmin, details: map[string]string{}}
	if err := secret.ValidateConnectionName(name); err != nil {
		return l.deny(ctx, o, nil, err)
	}
	o.details["connection"] = name
	return l.changeRecords(ctx, o, func(tx store.Tx) error {
		all, err := readConnections(tx)
		if err != nil {
			return err
		}
		if _, ok := all[name]; !ok {
			return fmt.Errorf("%w: no connection %s", secret.ErrNotFound, name)
		}
		delete(all, name)
		return writeConnections(tx, all)
	}, nil)
}

// RotationConnector implements rotation.ConnectorSource. The caller must
// be allowed to rotate path, and that is decided before anything else: a
// caller refused here has caused no side effect anywhere. Then the spec is
// bound to its connection with the connection's authority, which the
// caller cannot see or choose: its credential references resolve in this
// process (env:NAME) or the store (secret:PATH, audited as the
// connection's read).
func (l *Local) RotationConnector(ctx context.Context, path string, spec *secret.Rotation) (rotation.Connector, string, error) {
	o := op{action: ActionConnectionUse, perm: policy.ActionRotate, path: path, secret: true}
	if spec != nil && secret.ValidateConnectionName(spec.Connection) == nil {
		o.details = map[string]string{"connection": spec.Connection}
	}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return nil, "", err
	}
	conn, c, err := l.bind(ctx, path, spec)
	if err := l.read(ctx, audit.Entry{Action: o.action, Path: path, Decision: dec, Details: o.details}, err); err != nil {
		return nil, "", err
	}
	if store.FenceOf(ctx) != nil {
		c = fencedConnector{c: c, db: l.db}
	}
	return c, conn.Connector, nil
}

// fencedConnector is the connector of work done under a store.Fence (the
// scheduler's, under its lead): a target is outside the store, so no
// commit carries the fence there, and each step first checks that the
// fence still holds. A deposed leader that wakes from a pause then leaves
// the target alone: it neither rolls back a value its successor set nor
// revokes a role a later rotation gave a new password.
type fencedConnector struct {
	c  rotation.Connector
	db store.Backend
}

func (f fencedConnector) Set(ctx context.Context, t rotation.Target) error {
	if err := store.CheckFence(ctx, f.db); err != nil {
		return fmt.Errorf("set: %w", err)
	}
	return f.c.Set(ctx, t)
}

func (f fencedConnector) Test(ctx context.Context, t rotation.Target) error {
	if err := store.CheckFence(ctx, f.db); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	return f.c.Test(ctx, t)
}

func (f fencedConnector) Revoke(ctx context.Context, t rotation.Target) error {
	if err := store.CheckFence(ctx, f.db); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return f.c.Revoke(ctx, t)
}

// Compose keeps the wrapped connector's: without one the pending value is
// the generated one, as the runner makes it.
func (f fencedConnector) Compose(current, generated secret.Value) (secret.Value, error) {
	if c, ok := f.c.(rotation.Composer); ok {
		return c.Compose(current, generated)
	}
	return generated, nil
}

// bind loads the connection spec names and binds the spec to it.
func (l *Local) bind(ctx context.Context, path string, spec *secret.Rotation) (secret.Connection, rotation.Connector, error) {
	switch {
	case spec == nil:
		return secret.Connection{}, nil, fmt.Errorf("%w: no rotation configured", secret.ErrInvalidArgument)
	case spec.Legacy():
		return secret.Connection{}, nil, fmt.Errorf("%w: the rotation spec of %s predates connections and does not run; an administrator moves it with 'passman connection migrate'", secret.ErrPrecondition, path)
	}
	if err := spec.Validate(); err != nil {
		return secret.Connection{}, nil, err
	}
	conn, err := l.connection(ctx, spec.Connection)
	if errors.Is(err, secret.ErrNotFound) || err == nil && conn.Name != secret.GeneratedConnection && !conn.AllowsPath(path) {
		// One answer for both: whether a connection the secret may not
		// use exists, and what it is, is not the caller's to learn.
		return secret.Connection{}, nil, fmt.Errorf("%w: no connection %s that %s may use", secret.ErrNotFound, spec.Connection, path)
	}
	if err != nil {
		return conn, nil, err
	}
	c, err := l.connectors().Bind(conn, path, spec, connectionResolver{l: l, conn: conn.Name})
	return conn, c, err
}

// checkSpec checks, for a caller allowed to configure path's rotation,
// that the spec it sets can bind: the connection exists and lets path, its
// params and its roles use it.
func (l *Local) checkSpec(ctx context.Context, path string, spec *secret.Rotation) error {
	if !specChecked(spec) {
		return nil
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	_, _, err := l.bind(ctx, path, spec)
	return err
}

// specChecked reports whether checkSpec has anything to check in spec. A
// change that sets such a spec is authorized before its transaction: the
// check reads the store, which it cannot do inside the change's
// transaction, and must come after the policy's decision.
func specChecked(spec *secret.Rotation) bool {
	return spec != nil && (spec.Connection != "" || spec.Legacy())
}

func (l *Local) connectors() rotation.Registry {
	if l.opts.Connectors != nil {
		return l.opts.Connectors
	}
	return rotation.Connectors(rotation.ConnectorOptions{})
}

// connection reads one connection, the built-in one included.
func (l *Local) connection(ctx context.Context, name string) (secret.Connection, error) {
	if c, ok := rotation.BuiltinConnection(name); ok {
		return c, nil
	}
	var c secret.Connection
	err := l.db.View(ctx, func(tx store.Tx) error {
		all, err := readConnections(tx)
		if err != nil {
			return err
		}
		var ok bool
		if c, ok = all[name]; !ok {
			return fmt.Errorf("%w: no connection %s", secret.ErrNotFound, name)
		}
		return nil
	})
	return c, err
}

func readConnections(tx store.Tx) (map[string]secret.Connection, error) {
	all := map[string]secret.Connection{}
	b, err := store.MetaTx(tx, connectionsMeta)
	if err != nil {
		return nil, fmt.Errorf("read connections: %w", err)
	}
	if b == nil {
		return all, nil
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("%w: connections record: %v", secret.ErrCorrupt, err)
	}
	return all, nil
}

func writeConnections(tx store.Tx, all map[string]secret.Connection) error {
	b, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("encode connections: %w", err)
	}
	if err := store.PutMeta(tx, connectionsMeta, b); err != nil {
		return fmt.Errorf("write connections: %w", err)
	}
	return nil
}

// connectionResolver resolves a connection's credential references with
// the connection's authority: env:NAME from this process's environment
// (Options.Getenv), secret:PATH as an internal read of the store, audited
// as the connection's. The caller never chooses a reference: only an
// administrator writes a connection.
type connectionResolver struct {
	l    *Local
	conn string
}

func (r connectionResolver) Resolve(ctx context.Context, ref string) (secret.Value, error) {
	kind, name, ok := strings.Cut(ref, ":")
	switch {
	case ok && kind == "env" && name != "":
		var v string
		if r.l.opts.Getenv != nil {
			v = r.l.opts.Getenv(name)
		}
		if v == "" {
			// Not named: the error becomes the rotation's status, which
			// the secret's readers see; the connection's administrator
			// knows which variable it names.
			return secret.Value{}, fmt.Errorf("%w: connection %s: an environment variable it names is not set", secret.ErrInvalidArgument, r.conn)
		}
		return secret.NewValue([]byte(v)), nil
	case ok && kind == "secret" && secret.ValidatePath(name) == nil:
		v, err := r.l.st.Get(ctx, name, secret.Selector{})
		e := audit.Entry{Action: ActionConnectionResolve, Path: name, Version: v.Info.Version, Details: map[string]string{"connection": r.conn}}
		if err := r.l.read(ctx, e, err); err != nil {
			if errors.Is(err, secret.ErrAudit) {
				return secret.Value{}, err
			}
			// The audit entry names the path; the error, which the
			// secret's readers see, only its class.
			return secret.Value{}, fmt.Errorf("%w: connection %s: a secret it names could not be read", secret.ErrPrecondition, r.conn)
		}
		return v.Value, nil
	default:
		return secret.Value{}, fmt.Errorf("%w: connection %s: reference must be env:NAME or secret:PATH", secret.ErrInvalidArgument, r.conn)
	}
}
