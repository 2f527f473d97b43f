-- Spring Batch ships no indexes beyond the primary keys and JOB_INST_UN, so every
-- launch scans the execution and step tables; launches slow down as history grows.
-- These cover every lookup the repository makes on a launch, a restart and a query.

CREATE INDEX BATCH_JOB_EXEC_INST_IDX ON BATCH_JOB_EXECUTION (JOB_INSTANCE_ID, JOB_EXECUTION_ID);
-- Partial: only running executions are ever looked up by status, and a partial index costs no write when
-- a finished execution's row changes.
CREATE INDEX BATCH_JOB_EXEC_RUNNING_IDX ON BATCH_JOB_EXECUTION (STATUS) WHERE STATUS IN ('STARTING', 'STARTED', 'STOPPING');
CREATE INDEX BATCH_JOB_EXEC_PARAMS_EXEC_IDX ON BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID);
CREATE INDEX BATCH_STEP_EXEC_JOB_EXEC_IDX ON BATCH_STEP_EXECUTION (JOB_EXECUTION_ID, STEP_NAME);
CREATE INDEX BATCH_JOB_INST_NAME_IDX ON BATCH_JOB_INSTANCE (JOB_NAME, JOB_INSTANCE_ID);
