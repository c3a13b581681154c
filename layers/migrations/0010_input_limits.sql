-- phase: post
-- Input limits held by the database too (issue 13 point 8): the API and the importers refuse
-- longer text and out-of-range dates with a 400 naming the field (geo/inputs.py, api/inputs.py);
-- these constraints keep any other writer (psql, a script, a future route) to the same limits.
-- Constraint names are <column>_len / <column>_range: api/errors.py names the field from them.
-- Limits: names and titles 200, a person's name 100, notes/descriptions/reasons 2000; dates of
-- programme records from 2000-01-01 (EARLIEST in geo/inputs.py). Existing rows are checked as the
-- constraints are added: a database holding longer text fails here, naming the constraint.

ALTER TABLE units ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);
ALTER TABLE districts ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);
ALTER TABLE subdistricts ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);
ALTER TABLE communities ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);
ALTER TABLE zones ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);
ALTER TABLE zones ADD CONSTRAINT property_unit_len CHECK (char_length(property_unit) <= 200);
ALTER TABLE contract_sections ADD CONSTRAINT name_len CHECK (char_length(name) <= 200);

ALTER TABLE users ADD CONSTRAINT display_name_len CHECK (char_length(display_name) <= 100);
ALTER TABLE api_keys ADD CONSTRAINT client_name_len CHECK (char_length(client_name) <= 100);

ALTER TABLE cases
    ADD CONSTRAINT description_len CHECK (char_length(description) <= 2000),
    ADD CONSTRAINT reporter_name_len CHECK (char_length(reporter_name) <= 100),
    ADD CONSTRAINT reporter_phone_len CHECK (char_length(reporter_phone) <= 40);
ALTER TABLE case_events ADD CONSTRAINT note_len CHECK (char_length(note) <= 2000);

ALTER TABLE remediation_tasks
    ADD CONSTRAINT title_len CHECK (char_length(title) <= 200),
    ADD CONSTRAINT note_len CHECK (char_length(note) <= 2000),
    ADD CONSTRAINT planned_start_range CHECK (planned_start >= DATE '2000-01-01'),
    ADD CONSTRAINT planned_end_range CHECK (planned_end >= DATE '2000-01-01'),
    ADD CONSTRAINT actual_start_range CHECK (actual_start >= DATE '2000-01-01'),
    ADD CONSTRAINT actual_end_range CHECK (actual_end >= DATE '2000-01-01'),
    ADD CONSTRAINT verified_on_range CHECK (verified_on >= DATE '2000-01-01');
ALTER TABLE remediation_events ADD CONSTRAINT note_len CHECK (char_length(note) <= 2000);
ALTER TABLE zone_phase_deadlines ADD CONSTRAINT due_on_range CHECK (due_on >= DATE '2000-01-01');

ALTER TABLE inspections
    ADD CONSTRAINT note_len CHECK (char_length(note) <= 2000),
    ADD CONSTRAINT inspector_len CHECK (char_length(inspector) <= 100),
    ADD CONSTRAINT inspected_on_range CHECK (inspected_on >= DATE '2000-01-01');

ALTER TABLE survey_answers
    ADD CONSTRAINT household_len CHECK (char_length(household) <= 80),
    ADD CONSTRAINT building_len CHECK (char_length(building) <= 80),
    ADD CONSTRAINT surveyor_len CHECK (char_length(surveyor) <= 100),
    ADD CONSTRAINT remark_len CHECK (char_length(remark) <= 2000),
    ADD CONSTRAINT withdrawn_reason_len CHECK (char_length(withdrawn_reason) <= 2000),
    ADD CONSTRAINT answered_on_range CHECK (answered_on >= DATE '2000-01-01');
ALTER TABLE survey_rounds
    ADD CONSTRAINT label_len CHECK (char_length(label) <= 40),
    ADD CONSTRAINT organiser_len CHECK (char_length(organiser) <= 200),
    ADD CONSTRAINT starts_on_range CHECK (starts_on >= DATE '2000-01-01'),
    ADD CONSTRAINT ends_on_range CHECK (ends_on >= DATE '2000-01-01');
ALTER TABLE survey_batches ADD CONSTRAINT withdrawn_reason_len CHECK (char_length(withdrawn_reason) <= 2000);
ALTER TABLE survey_zone_rounds ADD CONSTRAINT reason_len CHECK (char_length(reason) <= 2000);
ALTER TABLE survey_answer_events ADD CONSTRAINT reason_len CHECK (char_length(reason) <= 2000);
ALTER TABLE acceptance_documents ADD CONSTRAINT reason_len CHECK (char_length(reason) <= 2000);
