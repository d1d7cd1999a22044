#!/usr/bin/env python3
# Writes corpus.txtar: synthetic files of the kinds of leaks gitleaks'
# default rules miss (and look-alikes that are not leaks), each risky line
# listed in the "labels" file as path:line. Lines marked "!!" below are the
# risky ones; the marker is not written. Every value is made up.
#   python3 gen.py > corpus.txtar
import base64

F = {}
def f(path, text):
    F[path] = text.strip("\n") + "\n"

f("site/wp-config.php", """
<?php
define( 'DB_NAME', 'shop' );
define( 'DB_USER', 'shopuser' );
!!define( 'DB_PASSWORD', 'Tr0ub4dor&3x!' );
define( 'DB_HOST', 'localhost' );
!!define( 'AUTH_KEY',         'qL#9v]Xz@4mT!c^2sF8$kP0w&yR7nB3e(J6hD1uZ5aG' );
!!define( 'SECURE_AUTH_KEY',  'W2{pR8!zQ5@tL0#yE7$kM4^sN1&vB9*cX6(hJ3)dF0g' );
!!define( 'NONCE_SALT',       'h8&K3@zP!5tQ0#wR7$yL2^mN9*vB4(cX1)sF6%jD3eG' );
$table_prefix = 'wp_';
""")
f("blog/wp-config-sample.php", """
<?php
define( 'DB_PASSWORD', 'password_here' );
define( 'AUTH_KEY',         'put your unique phrase here' );
define( 'SECURE_AUTH_KEY',  'put your unique phrase here' );
""")
f("app/.env", """
APP_NAME=Shop
APP_ENV=production
!!APP_KEY=base64:q3N0Yk5hV2xQeGJ6R0Z2d1JsVmRhN0t4T2hZdGNtUT0=
DB_CONNECTION=mysql
DB_HOST=10.0.4.12
DB_USERNAME=shop
!!DB_PASSWORD=mQ7#vL2pX9zR
!!MAIL_PASSWORD=t8Kp2wZq5Nc4
REDIS_PASSWORD=null
""")
f("app/.env.example", """
APP_KEY=
DB_PASSWORD=changeme
MAIL_PASSWORD=
SECRET_TOKEN=your_token_here
""")
f("svc/.env.production", """
!!export STRIPE_SECRET=Zq8mP3vR7tK2wX9n
!!POSTGRES_PASSWORD='h4Rd-2-gu3ss-pW'
LOG_LEVEL=info
""")
f("home/.netrc", """
!!machine ftp.corp.example.net login deploy password Xw9#kQ2mLp
!!machine api.internal login ci password r7Tz-44Ab-Qx1
""")
f("home/.pgpass", """
# hostname:port:database:username:password
!!db1.internal:5432:billing:billing_app:Vb8!qL3zPw
!!*:*:*:postgres:K2m#xR9tZq
""")
f("home/.git-credentials", """
!!https://alice:Qp7vX2kL9mZ4@git.internal.example.net
!!https://bob:x8Tq2ZwR5nKc@gitea.corp.lan
""")
f("home/.npmrc", """
registry=https://registry.corp.lan/
!!//registry.corp.lan/:_authToken=NpmTok9xQ2vL7mZ4kR8wT3pY6
!!_auth=YWxpY2U6UXA3dlgya0w5bVo0
always-auth=true
""")
f("ci/.npmrc", """
//registry.npmjs.org/:_authToken=${NPM_TOKEN}
""")
f("home/.bashrc", """
alias ll='ls -la'
!!export DB_PASSWORD='Gh7#pQ2xZ9'
!!export JIRA_API_TOKEN=Jt5pQ8wZ2mX7kR4v
export PATH=$HOME/bin:$PATH
export DB_PASSWORD_FILE=/run/secrets/db
""")
f("deploy/run.sh", """
#!/bin/sh
!!export ADMIN_PASSWORD=Yk3#mR8qZp
export ADMIN_PASSWORD=${ADMIN_PASSWORD:-}
""")
f("etc/shadow", """
root:*:19000:0:99999:7:::
!!alice:$6$Vq2mR8xZ$N8pQ2kL7vX9zT4wR1mY6cB3nH5jF0gD2sA8eU7iO4pK9lZ1xC6vB3nM5qW8eR2tY4uI7oP0aS3dF6gH9jK2lZ5:19012:0:99999:7:::
!!bob:$y$j9T$F5Jx.Q8mR2vZ$L1kP9wT4nX7qC2vB5mZ8rY3eU6iO0pA4sD7fG1hJ.:19013:0:99999:7:::
daemon:!:19000::::::
""")
f("www/.htpasswd", """
!!admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/
!!deploy:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
""")
f("etc/proftpd/ftpd.passwd", """
!!ftpuser:$1$Vx9q2Lm8$Tz4kP7wQ2nR5yB8cX1vM0/:1001:1001::/srv/ftp:/bin/false
""")
f("dump/users.sql", """
INSERT INTO users (id, email, password_hash) VALUES
!!(1, 'a@shop.example', '$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'),
!!(2, 'b@shop.example', '$2b$12$KIXQ4S6q7y1vD8mZ2pR5reU0LzT3wN9cX6bV1hF4gJ7kM0sA2dE5u');
""")
f("web/settings.py", """
import os
DEBUG = False
!!SECRET_KEY = 'x9#q!v2m@l7p$z4k&r8t*w1n^c6b(e3h)j5f0g-d'
ALLOWED_HOSTS = ['shop.example']
""")
f("web/settings_env.py", """
import os
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
""")
f("rails/config/master.key", """
!!6f1c3e9a2b7d4f8e0a5c1b9d3e7f2a64
""")
f("keys/server.ppk", """
!!PuTTY-User-Key-File-2: ssh-rsa
Encryption: none
Comment: rsa-key-20190101
Public-Lines: 2
AAAAB3NzaC1yc2EAAAABJQAAAQEAkq8sV2mX9pL4wZ7tR1nQ6yB3cF8hJ5kD0gE2
aM4vX7pL9wZ2tR5nQ8yB1cF4hJ7kD3gE6aM9vX2pL5wZ8tR1nQ4yB7cF0hJ3kD6g
Private-Lines: 2
AAABAHk9sV3mX8pL5wZ6tR2nQ7yB4cF9hJ6kD1gE3aM5vX8pL0wZ3tR6nQ9yB2cF
5hJ8kD4gE7aM0vX3pL6wZ9tR2nQ5yB8cF1hJ4kD7gE0aM3vX6pL9wZ2tR5nQ8yB1
Private-MAC: 4b8f2c9e1d7a3b6f0e5c8d2a9b4f7e1c3d6a0b8f
""")
f("conf/recentservers.xml", """
<?xml version="1.0" encoding="UTF-8"?>
<FileZilla3>
  <RecentServers>
    <Server>
      <Host>ftp.shop.example</Host>
      <User>shopftp</User>
!!      <Pass encoding="base64">""" + base64.b64encode(b"Fz9#kQ2mLpW").decode() + """</Pass>
    </Server>
  </RecentServers>
</FileZilla3>
""")
f("profile/logins.json", """
!!{"nextId":2,"logins":[{"id":1,"hostname":"https://shop.example","encryptedUsername":"MDIEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECHk2","encryptedPassword":"MEIEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECJq8vX2mL9pQBBjR7tZ4wN1kC6yE3hF8jM5sA0bG2dV9uT4="}]}
""")
f("sublime/sftp-config.json", """
{
    "type": "sftp",
    "host": "shop.example",
    "user": "deploy",
!!    "password": "Sf7#tP2qXm9",
    "remote_path": "/var/www/"
}
""")
f("idea/WebServers.xml", """
<application>
  <component name="WebServers">
    <option name="servers">
      <webServer id="1" name="prod" url="http://shop.example">
!!        <fileTransfer host="shop.example" port="22" privateKey="" accessType="SFTP" password="Wq5#zR8pLm" />
      </webServer>
    </option>
  </component>
</application>
""")
f("mail/.esmtprc", """
identity "ops@shop.example"
  hostname = smtp.shop.example:587
  username = "ops@shop.example"
!!  password = "Em4#sR9qTz"
""")
f("irc/.irssi/config", """
servers = (
!!  { address = "irc.corp.lan"; chatnet = "corp"; port = "6697"; password = "Ir8#cQ2mZp"; }
);
""")
f("voip/sip.conf", """
[6001]
type=friend
!!secret=Vo3#iP7qXz
host=dynamic
""")
f("src/db.go", """
package db

const dsn = "postgres://app:localdev@localhost:5432/app?sslmode=disable"

!!var prod = "postgres://billing:Rk8#mQ2zXv7p@db1.corp.lan:5432/billing"
!!var mongo = "mongodb://admin_ro:Mg5tR9wQ2xZ7@mongo-0.corp.lan:27017/shop"
var tmpl = "mysql://%s:%s@%s/%s"
var doc = "redis://:password@host:6379"
""")
f("src/Main.java", """
class Main {
!!  static String URL = "jdbc:mysql://db.corp.lan:3306/shop?user=shop&password=Jd7#bQ2mXz";
!!  static String URL2 = "jdbc:sqlserver://sql.corp.lan:1433;databaseName=shop;user=sa;password=Sq9#lR4pZw;";
  static String URL3 = "jdbc:postgresql://localhost/test?user=test&password=${DB_PASSWORD}";
}
""")
f("src/App.config", """
<connectionStrings>
!!  <add name="Shop" connectionString="Server=sql.corp.lan;Database=shop;User Id=shop_app;Password=Cs6#nQ9xTw;" />
  <add name="Dev" connectionString="Server=(localdb)\\mssqllocaldb;Database=dev;Trusted_Connection=True;" />
</connectionStrings>
""")
f("src/config.php", """
<?php
$config = array(
  'db_host' => 'db.corp.lan',
!!  'db_password' => 'Ph5#qR8mZx',
);
!!$smtp_pass = "Sm7#tQ2pXw";
$pass = $_POST['password'];
""")
f("src/settings.yaml", """
database:
  host: db.corp.lan
!!  password: Ym4#lQ8zRp
""")
f("src/app.properties", """
!!spring.datasource.password=Pr6#oQ3xZm
spring.datasource.username=shop
""")
f("docs/README.md", """
Set `DB_PASSWORD` in your environment. Connect with
`postgres://user:password@localhost/db`. Example wp-config line:
define( 'DB_PASSWORD', 'password_here' );
""")
f("src/auth.go", """
package auth

func check(password string) bool {
	hash := os.Getenv("PASSWORD_HASH")
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
""")
f("src/client.py", """
import os
password = os.environ.get("PASSWORD")
url = f"https://{user}:{password}@{host}/api"
""")

paths = sorted(F)
labels = []
for p in paths:
    lines = F[p].split("\n")
    clean = []
    for i, l in enumerate(lines):
        if l.startswith("!!"):
            labels.append("%s:%d" % (p, i + 1))
            l = l[2:]
        clean.append(l)
    F[p] = "\n".join(clean)
print("# Synthetic leaks gitleaks' default rules miss, and look-alikes that are")
print("# not leaks; labels lists the risky lines. Written by gen.py.")
print("-- labels --")
for l in labels:
    print(l)
for p in paths:
    print("-- %s --" % p)
    print(F[p], end="")
