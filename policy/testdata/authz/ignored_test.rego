# A unit-test file: evaluation must ignore it. Were it loaded, this deny
# would refuse everything and the authz matrix would fail.
package passman.authz

deny contains "a *_test.rego file was evaluated"
