package client

import (
	"context"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// PutPolicy implements passman.Policies. Retried: putting the source a
// module already has changes nothing.
func (c *Client) PutPolicy(ctx context.Context, name, source string) (secret.PolicyModule, error) {
	var out secret.PolicyModule
	err := c.do(ctx, request{route: api.RoutePolicyPut, tail: name, in: api.PolicyPutRequest{Source: source}, out: &out, retry: true})
	return out, err
}

// GetPolicy implements passman.Policies.
func (c *Client) GetPolicy(ctx context.Context, name string) (secret.PolicyModule, error) {
	var out secret.PolicyModule
	err := c.do(ctx, request{route: api.RoutePolicyGet, tail: name, out: &out, retry: true})
	return out, err
}

// ListPolicies implements passman.Policies.
func (c *Client) ListPolicies(ctx context.Context) ([]secret.PolicyModule, error) {
	var out api.PolicyListResponse
	err := c.do(ctx, request{route: api.RoutePolicyList, out: &out, retry: true})
	return out.Policies, err
}

// DeletePolicy implements passman.Policies.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	return c.do(ctx, request{route: api.RoutePolicyDelete, tail: name, retry: true})
}
