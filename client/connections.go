package client

import (
	"context"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// PutConnection implements passman.Connections.
func (c *Client) PutConnection(ctx context.Context, conn secret.Connection) (secret.Connection, error) {
	var out secret.Connection
	in := api.ConnectionRequest{Connector: conn.Connector, Config: conn.Config, AllowedPaths: conn.AllowedPaths, AllowedRoles: conn.AllowedRoles, AllowedNames: conn.AllowedNames}
	err := c.do(ctx, request{route: api.RouteConnectionPut, tail: conn.Name, in: in, out: &out, retry: true})
	return out, err
}

// GetConnection implements passman.Connections.
func (c *Client) GetConnection(ctx context.Context, name string) (secret.Connection, error) {
	var out secret.Connection
	err := c.do(ctx, request{route: api.RouteConnectionGet, tail: name, out: &out, retry: true})
	return out, err
}

// ListConnections implements passman.Connections.
func (c *Client) ListConnections(ctx context.Context) ([]secret.Connection, error) {
	var out api.ConnectionListResponse
	err := c.do(ctx, request{route: api.RouteConnectionList, out: &out, retry: true})
	return out.Connections, err
}

// DeleteConnection implements passman.Connections.
func (c *Client) DeleteConnection(ctx context.Context, name string) error {
	return c.do(ctx, request{route: api.RouteConnectionDelete, tail: name, retry: true})
}
