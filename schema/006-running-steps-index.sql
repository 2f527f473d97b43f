-- Reconciliation repairs step executions left running under an execution that ended. Finding them without a
-- scan of every step execution ever run needs an index of the running ones, spelled like BATCH_JOB_EXEC_RUNNING_IDX
-- (004) so the planner matches it; it holds only the few running rows.

CREATE INDEX BATCHD_STEP_EXEC_RUNNING_IDX ON BATCH_STEP_EXECUTION (STATUS)
	WHERE STATUS = 'STARTING' OR STATUS = 'STARTED' OR STATUS = 'STOPPING';
