-- The partial index of running executions said STATUS IN (...). SQLite evaluates a partial index's condition
-- whenever a row of the table changes, and an IN list builds a temporary table every time: each update of an
-- execution paid for one. The same condition with OR costs nothing.

DROP INDEX BATCH_JOB_EXEC_RUNNING_IDX;
CREATE INDEX BATCH_JOB_EXEC_RUNNING_IDX ON BATCH_JOB_EXECUTION (STATUS)
	WHERE STATUS = 'STARTING' OR STATUS = 'STARTED' OR STATUS = 'STOPPING';
