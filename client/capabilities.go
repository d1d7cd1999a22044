package client

import "github.com/passman-dev/passman"

var (
	_ passman.Service         = (*Client)(nil)
	_ passman.Connections     = (*Client)(nil)
	_ passman.Tokens          = (*Client)(nil)
	_ passman.PolicyEvaluator = (*Client)(nil)
	_ passman.Rotator         = (*Client)(nil)
	_ passman.LeakResponder   = (*Client)(nil)
	_ passman.Readier         = (*Client)(nil)
	_ passman.Fingerprints    = (*Client)(nil)
	_ passman.ValueComparer   = (*Client)(nil)
	_ passman.Policies        = (*Client)(nil)
	_ passman.Scheduling      = (*Client)(nil)
	_ passman.Backups         = (*Client)(nil)
)
