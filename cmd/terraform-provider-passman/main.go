// Command terraform-provider-passman is the Terraform provider for
// passman, served over Terraform's plugin protocol 6.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/passman-dev/passman/provider"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Address is the provider's conventional address; with dev_overrides
// Terraform runs a local build under it, no registry involved.
const Address = "registry.terraform.io/passman-dev/passman"

func main() {
	os.Exit(run())
}

func run() int {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()
	quietSDKLogs()
	stores := provider.NewLocalStores()
	err := providerserver.Serve(context.Background(), provider.New(version, provider.Options{Stores: stores}), providerserver.ServeOpts{
		Address:         Address,
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if cerr := stores.Close(); cerr != nil {
		fmt.Fprintln(os.Stderr, cerr)
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// quietSDKLogs turns the plugin SDK's own logs off unless a TF_LOG
// variable asks for logs. Terraform discards them otherwise, but the SDK
// formats every one first (JSON, per RPC): in a no-change plan of
// passman_secret resources that was over a third of the provider's CPU
// time (scripts/bench-terraform.sh).
func quietSDKLogs() {
	for _, k := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(k) != "" {
			return
		}
	}
	_ = os.Setenv("TF_LOG_SDK", "OFF")
}
