-- batchd's cluster tables (docs/cluster.md), next to Spring's. Times in *_USEC columns are microseconds since
-- the epoch on the DATABASE's clock, never a node's: a node's clock may be skewed, the database's is one for all.

-- Every node that ever joined: its lease is renewed by HEARTBEAT_USEC; EPOCH grows with every start and every
-- death, so a node's writes made under an older epoch can be told apart (and refused).
CREATE TABLE BATCHD_NODE (
	NODE_NAME VARCHAR(100) NOT NULL PRIMARY KEY,
	BOOT_ID VARCHAR(36) NOT NULL,
	EPOCH BIGINT NOT NULL,
	STATE VARCHAR(10) NOT NULL,
	STARTED_USEC BIGINT NOT NULL,
	HEARTBEAT_USEC BIGINT NOT NULL,
	JOBS_HASH VARCHAR(64),
	DEAD_REASON VARCHAR(2500)
);

-- The definition hash of every job each node defines: two nodes that define one job differently drift.
CREATE TABLE BATCHD_NODE_JOB (
	NODE_NAME VARCHAR(100) NOT NULL,
	JOB_NAME VARCHAR(100) NOT NULL,
	DEFINITION_HASH VARCHAR(64) NOT NULL,
	PRIMARY KEY (NODE_NAME, JOB_NAME)
);

-- Which node (at which epoch) runs an execution: a dead node's running executions are failed by the others.
-- Always looked up from the running executions (by primary key), never by node: no index by node needed.
CREATE TABLE BATCHD_EXECUTION_OWNER (
	JOB_EXECUTION_ID BIGINT NOT NULL PRIMARY KEY,
	NODE_NAME VARCHAR(100) NOT NULL,
	NODE_EPOCH BIGINT NOT NULL
);

-- One row per scheduled fire, keyed by the scheduled time from the calendar (never now): the node whose insert
-- wins runs the fire or records its non-run; every other node finds the row and records nothing.
CREATE TABLE BATCHD_JOB_FIRE (
	JOB_NAME VARCHAR(100) NOT NULL,
	SCHEDULED_USEC BIGINT NOT NULL,
	NODE_NAME VARCHAR(100) NOT NULL,
	CLAIMED_USEC BIGINT NOT NULL,
	JOB_EXECUTION_ID BIGINT,
	PRIMARY KEY (JOB_NAME, SCHEDULED_USEC)
);

CREATE INDEX BATCHD_JOB_FIRE_CLAIMED_IDX ON BATCHD_JOB_FIRE (CLAIMED_USEC);
