# The security team hears of every leak that is not ignored.
package passman.respond

actions contains {"action": "notify", "reason": "security is told of every leak"} if not ignored
