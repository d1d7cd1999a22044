#!/usr/bin/env bash
# Generates the Terraform provider's documentation (docs/terraform, or the
# directory given) from the provider's schema descriptions and examples/,
# with tfplugindocs. It builds the provider and asks the terraform binary on
# PATH for its schema: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/terraform}")
provider_dir=cmd/terraform-provider-passman
# tfplugindocs takes its directories relative to the provider's.
rel() { realpath -m --relative-to="$provider_dir" "$1"; }
go tool tfplugindocs generate --provider-name passman --provider-dir "$provider_dir" \
  --examples-dir "$(rel examples)" --website-source-dir "$(rel docs/terraform-templates)" \
  --rendered-website-dir "$(rel "$out")" >/dev/null
