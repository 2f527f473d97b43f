-- "batchctl enable JOB" / "batchctl disable JOB": the same table as the SQLite migration 008 (read it for why).
-- (Numbered 004: 003 is the cluster's migration.)

CREATE TABLE BATCHD_JOB_ENABLED (
	JOB_NAME VARCHAR(100) NOT NULL PRIMARY KEY,
	ENABLED INTEGER NOT NULL,
	CHANGED_TIME TIMESTAMP NOT NULL
);
