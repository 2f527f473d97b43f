-- "batchctl enable JOB" / "batchctl disable JOB": a job's schedule switched on or off at runtime. A row
-- overrides the job file's `enabled` until "batchctl revert JOB" deletes it; no row, the file decides. Kept in
-- the database rather than in a state file so that it survives restarts and reloads, and so that every node
-- sharing a repository sees the same switch.
-- (Numbered 008: 007 is the cluster's migration.)

CREATE TABLE BATCHD_JOB_ENABLED (
	JOB_NAME VARCHAR(100) NOT NULL PRIMARY KEY,
	ENABLED INTEGER NOT NULL,
	CHANGED_TIME TIMESTAMP NOT NULL
);
