package testenv

import "fmt"

// BundleOverride is the docker-compose.override.yaml of a whole-deployment
// test project (e2e bundle tests, bench/bundle): Dify's real database
// service (db, "db_postgres" or "db_mysql") and redis definitions run on
// the fixtures (PostgreSQL or MariaDB, the Redis fixture), and api and
// plugin_daemon, whose images are not built here, as busybox containers
// that keep Dify's volumes and dependencies.
func BundleOverride(db string) string {
	return "services:\n" + DBFixtureService(db) + fmt.Sprintf(`  redis:
    image: %[2]s
  init_permissions:
    image: %[3]s
  api:
    image: %[3]s
    entrypoint: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
    command: !reset []
    healthcheck:
      disable: true
    depends_on: !override
      init_permissions: {condition: service_completed_successfully}
      %[1]s: {condition: service_healthy}
      redis: {condition: service_started}
  plugin_daemon:
    image: %[3]s
    entrypoint: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
    command: !reset []
    ports: !reset []
`, db, ImageRedis, ImageBusybox)
}

// DBFixtureService is the override block (under "services:") that runs
// Dify's real database service definition db ("db_postgres" or "db_mysql")
// on the PostgreSQL or MariaDB fixture, probed every 2 s while it starts.
func DBFixtureService(db string) string {
	img := ImagePostgres
	if db == "db_mysql" {
		img = ImageMariaDB
	}
	return fmt.Sprintf("  %s:\n    image: %s\n    healthcheck:\n      interval: 2s\n      timeout: 30s\n      retries: 300\n", db, img)
}
