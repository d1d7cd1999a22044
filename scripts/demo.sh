#!/usr/bin/env bash
# The main job on the embedded default store: init, write and generate
# secrets, read one back, show history, roll back, verify the audit log,
# policies and the manifest, then rotation and a leak found and answered,
# and, when terraform is installed, the same store managed with Terraform
# through the locally built provider (dev_overrides: no registry).
# Runs in a fresh temporary store; nothing outside it is touched.
set -euo pipefail
passman=$(realpath "${1:-bin/passman}")
provider=${2:-bin/terraform-provider-passman}
export PASSMAN_STORE
PASSMAN_STORE=$(mktemp -d)/store
trap 'rm -rf "$(dirname "$PASSMAN_STORE")"' EXIT
unset PASSMAN_MASTER_KEY PASSMAN_KEY_FILE

step() { printf '\n\033[1m$ passman %s\033[0m\n' "$*"; }
run() { step "$*"; "$passman" "$@"; }

run init
step "secret put prod/db/password  (value on stdin)"
printf 'first-password' | "$passman" secret put prod/db/password --owner team-db --tag env=prod --rotation-period 30d
step "secret put prod/db/password  (second version)"
printf 'second-password' | "$passman" secret put prod/db/password
run secret put prod/app/token --generate --length 40 --classes upper,lower,digits --owner team-app
run secret put dev/app/token --generate
step "secret get prod/db/password"
"$passman" secret get prod/db/password; echo
run secret list prod/
run secret history prod/db/password
run secret rollback prod/db/password 1
step "secret get prod/db/password --stage previous"
"$passman" secret get prod/db/password --stage previous; echo
run secret meta prod/db/password
run keys rotate
run secret get prod/db/password -o json
run audit tail -n 5
run audit verify

# Connections are an administrator's: how rotations reach their targets,
# and which secrets may use them. The example manifest's secrets name them.
run connection put pg-main --connector postgres --config admin_dsn=env:PASSMAN_PG_ADMIN_DSN \
  --allow-path 'prod/db/*' --allow-role 'app_*'
run connection put tls-renew --connector exec --config command=/usr/local/bin/renew-tls-key \
  --allow-path prod/app/tls-key
run connection list

# Policy as code: the example policies pass their tests, the example
# manifest lints clean against them, and plan/apply bring the store in line
# (plan exits 2 while there is something to apply).
examples=$(dirname "$0")/../examples
run policy test "$examples/policies"
run lint -f "$examples/passman.yaml"
step "plan -f examples/passman.yaml"
"$passman" plan -f "$examples/passman.yaml" || [ $? -eq 2 ]
run apply -f "$examples/passman.yaml"
run plan -f "$examples/passman.yaml"

# Rotation and leak response: prod/app/token rotates through the staged
# protocol (generated connector); then its current value is committed to a
# throw-away git repository, the scan recognises it by fingerprint (no rule
# would: it is random), and --respond rotates it as the respond policy says.
run rotate prod/app/token
run status
repo=$(dirname "$PASSMAN_STORE")/repo
git init -q "$repo"
printf 'PAYMENTS_TOKEN=%s\n' "$("$passman" secret get prod/app/token)" > "$repo/app.env"
git -C "$repo" add app.env
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q -m "add settings"
step "scan git $repo --managed --respond"
"$passman" scan git "$repo" --managed --respond --no-cache || [ $? -eq 1 ]
run secret history prod/app/token

# Terraform: examples/terraform on this store, through the provider built
# by make (dev_overrides: nothing is downloaded). Values never enter the
# state; a change made with the CLI shows in the plan and apply undoes it;
# after a rotation the rotated secret shows no change (its copy, tied to its
# version by value_wo_version, follows).
if command -v terraform >/dev/null && [ -x "$provider" ]; then
  tfdir=$(dirname "$PASSMAN_STORE")/terraform
  mkdir -p "$tfdir"
  cp "$examples/terraform/main.tf" "$tfdir/"
  printf 'provider_installation {\n  dev_overrides {\n    "passman-dev/passman" = "%s"\n  }\n  direct {}\n}\n' \
    "$(dirname "$(realpath "$provider")")" > "$tfdir/terraform.rc"
  export TF_CLI_CONFIG_FILE=$tfdir/terraform.rc CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
  TF_VAR_db_password=$(head -c 18 /dev/urandom | base64)
  export TF_VAR_db_password
  # The dev_overrides warning on every run says what we know; it is cut.
  tf() {
    printf '\n\033[1m$ terraform %s\033[0m\n' "$*"
    terraform -chdir="$tfdir" "$@" -no-color 2>&1 | sed -e '/Warning: Provider development overrides/,/^releases\.$/d' -e '/^$/d'
  }
  tf apply -auto-approve -input=false
  printf '\n\033[1m$ grep the state for the database password\033[0m\n'
  if grep -qF "$TF_VAR_db_password" "$tfdir/terraform.tfstate"; then echo "FOUND: the value is in the state" >&2; exit 1; fi
  echo "not in the state"
  step "secret put tf-demo/db/password  (a change outside Terraform)"
  printf 'changed-by-hand' | "$passman" secret put tf-demo/db/password
  tf plan -input=false
  tf apply -auto-approve -input=false
  run rotate tf-demo/app/api-token
  tf plan -input=false
  tf destroy -auto-approve -input=false
else
  printf '\n(terraform or %s not found: the Terraform walkthrough is skipped)\n' "$provider"
fi
