-- Runs once, when the MySQL container initialises an empty data volume.
-- `app` is the application's database; `dev` is the empty scratch database that
-- `python -m migrate` uses to plan and check migrations (DEV_DATABASE_URL).
CREATE DATABASE IF NOT EXISTS app;
CREATE DATABASE IF NOT EXISTS dev;
