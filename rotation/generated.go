package rotation

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

// Generated is the connector of a secret with no external target: the
// value is only ever consumed from passman, so there is nothing to set or
// revoke, and the test is that the value is there.
func Generated(cfg map[string]string, _ Resolver) (Connector, error) {
	if err := CheckKeys(cfg, nil, nil); err != nil {
		return nil, err
	}
	return generated{}, nil
}

type generated struct{}

func (generated) Set(context.Context, Target) error { return nil }

func (generated) Test(_ context.Context, t Target) error {
	if t.Value.Len() == 0 {
		return fmt.Errorf("%w: %s v%d: empty value", secret.ErrInvalidArgument, t.Path, t.Version)
	}
	return nil
}

func (generated) Revoke(context.Context, Target) error { return nil }
