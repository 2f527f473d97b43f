-- The run.id incrementer gives a launch the highest run.id of its job + 1. Walking every parameter of every
-- execution of the job to find it took 0.8 s at 200,000 executions, inside the event loop; from the highest
-- run.ids down (this index), the job's own highest is normally among the first rows. The condition is two
-- equalities, which cost nothing on insert (see 004).

CREATE INDEX BATCHD_RUN_ID_IDX ON BATCH_JOB_EXECUTION_PARAMS (CAST(PARAMETER_VALUE AS INTEGER))
	WHERE PARAMETER_NAME = 'run.id' AND PARAMETER_TYPE = 'java.lang.Long';
