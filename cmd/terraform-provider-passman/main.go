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
