package scanner_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner"
)

// sample is one file for a rule's case.
type sample struct{ name, content string }

// passmanRuleCases are each passman rule's positive case (the rule must
// report it) and negative case (a look-alike it must not report).
var passmanRuleCases = map[string]struct{ pos, neg sample }{
	"passman-wp-config-password": {
		sample{"wp-config.php", "define( 'DB_PASSWORD', 'Tr0ub4dor&3x!' );\n"},
		sample{"wp-config.php", "define( 'DB_PASSWORD', 'password_here' );\n"},
	},
	"passman-wordpress-salt": {
		sample{"wp-config.php", "define('AUTH_KEY', 'qL#9v]Xz@4mT!c^2sF8$kP0w&yR7nB3e(J6hD1uZ5aG');\n"},
		sample{"wp-config.php", "define('AUTH_KEY', 'put your unique phrase here');\n"},
	},
	"passman-django-secret-key": {
		sample{"settings.py", "SECRET_KEY = 'x9#q!v2m@l7p$z4k&r8t*w1n^c6b(e3h)j5f0g-d'\n"},
		sample{"settings.py", "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\n"},
	},
	"passman-laravel-app-key": {
		sample{".env", "APP_KEY=base64:q3N0Yk5hV2xQeGJ6R0Z2d1JsVmRhN0t4T2hZdGNtUT0=\n"},
		sample{".env", "APP_KEY=\n"},
	},
	"passman-rails-master-key": {
		sample{"config/master.key", "6f1c3e9a2b7d4f8e0a5c1b9d3e7f2a64\n"},
		sample{"config/other.txt", "6f1c3e9a2b7d4f8e0a5c1b9d3e7f2a64\n"},
	},
	"passman-putty-private-key": {
		sample{"id.ppk", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"},
		sample{"notes.md", "Convert the key with puttygen into a .ppk file.\n"},
	},
	"passman-npmrc-auth": {
		sample{".npmrc", "//registry.corp.lan/:_authToken=NpmTok9xQ2vL7mZ4kR8wT3pY6\n"},
		sample{".npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"},
	},
	"passman-netrc-password": {
		sample{".netrc", "machine ftp.corp.lan login deploy password Xw9#kQ2mLp\n"},
		sample{"netrc.md", "machine ftp.corp.lan login deploy password Xw9#kQ2mLp\n"},
	},
	"passman-pgpass": {
		sample{".pgpass", "db1.internal:5432:billing:billing_app:Vb8!qL3zPw\n"},
		sample{".pgpass", "# hostname:port:database:username:password\n"},
	},
	"passman-git-credentials": {
		sample{".git-credentials", "https://alice:Qp7vX2kL9mZ4@git.corp.lan\n"},
		sample{".git-credentials", "https://git.corp.lan\n"},
	},
	"passman-uri-credentials": {
		sample{"db.go", `var u = "mongodb://admin_ro:Mg5tR9wQ2xZ7@mongo-0.corp.lan:27017/shop"` + "\n"},
		sample{"db.go", `var u = "postgres://app:localdev@localhost:5432/app"; var v = "redis://user:password@cache.corp.lan"` + "\n"},
	},
	"passman-jdbc-password": {
		sample{"Main.java", `String u = "jdbc:mysql://db.corp.lan:3306/shop?user=shop&password=Jd7#bQ2mXz";` + "\n"},
		sample{"Main.java", `String u = "jdbc:postgresql://localhost/test?user=test&password=${DB_PASSWORD}";` + "\n"},
	},
	"passman-connection-string-password": {
		sample{"App.config", `connectionString="Server=sql.corp.lan;Database=shop;User Id=shop_app;Password=Cs6#nQ9xTw;"` + "\n"},
		sample{"App.config", `connectionString="Server=(localdb);Database=dev;Trusted_Connection=True;"` + "\n"},
	},
	"passman-dotenv-password": {
		sample{".env.production", "POSTGRES_PASSWORD='h4Rd-2-gu3ss-pW'\n"},
		sample{".env.example", "DB_PASSWORD=changeme\nMAIL_PASSWORD=\n"},
	},
	"passman-php-config-password": {
		sample{"config.php", "$smtp_pass = \"Sm7#tQ2pXw\";\n"},
		sample{"config.php", "$pass = $_POST['password'];\n"},
	},
	"passman-shell-export-password": {
		sample{".bashrc", "export DB_PASSWORD='Gh7#pQ2xZ9'\n"},
		sample{".bashrc", "export DB_PASSWORD=$(pass show db)\n"},
	},
	"passman-unix-password-hash": {
		sample{"shadow", "alice:$6$Vq2mR8xZ$N8pQ2kL7vX9zT4wR1mY6cB3nH5jF0gD2sA8eU7iO4pK9lZ1xC6vB3nM5qW8eR2tY4:19012:0:99999:7:::\n"},
		sample{"shadow", "root:*:19000:0:99999:7:::\ndaemon:!:19000::::::\n"},
	},
	"passman-bcrypt-hash": {
		sample{"users.sql", "(1, 'a@shop.example', '$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'),\n"},
		sample{"users.sql", "-- hashes look like $2y$10$ followed by 53 characters\n"},
	},
	"passman-filezilla-password": {
		sample{"recentservers.xml", "<Pass encoding=\"base64\">Rno5I2tRMm1McFc=</Pass>\n"},
		sample{"recentservers.xml", "<Pass encoding=\"base64\"></Pass>\n"},
	},
	"passman-firefox-logins": {
		sample{"logins.json", `{"encryptedPassword":"MEIEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECJq8vX2mL9pQ"}` + "\n"},
		sample{"logins.json", `{"encryptedPassword":""}` + "\n"},
	},
	"passman-client-config-password": {
		sample{"sftp-config.json", "    \"password\": \"Sf7#tP2qXm9\",\n"},
		sample{"sftp-config.json", "    \"password\": null,\n"},
	},
}

func TestPassmanRules(t *testing.T) {
	t.Parallel()
	// Every rule in rules/passman.toml has its cases.
	src, err := os.ReadFile("rules/passman.toml")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`(?m)^id = "([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(ids) != len(passmanRuleCases) {
		t.Errorf("rules/passman.toml has %d rules, the test %d cases", len(ids), len(passmanRuleCases))
	}
	s := newScanner(t, scanner.Options{})
	has := func(smp sample, rule string) bool {
		fs, _, err := s.ScanReader(context.Background(), smp.name, strings.NewReader(smp.content))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.RuleID == rule {
				return true
			}
		}
		return false
	}
	for _, id := range ids {
		c, ok := passmanRuleCases[id[1]]
		if !ok {
			t.Errorf("rule %s has no cases", id[1])
			continue
		}
		if !has(c.pos, id[1]) {
			t.Errorf("%s does not report its positive case %q", id[1], c.pos.content)
		}
		if has(c.neg, id[1]) {
			t.Errorf("%s reports its negative case %q", id[1], c.neg.content)
		}
	}
}
