-- PadmeDAQ online database: the tables btf-scanplan reads and adds rows to.
-- Source: btf-padme-facts.md section 6 (PADME run bookkeeping). MariaDB/MySQL, InnoDB.
--
-- This file is for TESTS and development databases only. btf-scanplan never runs DDL on a
-- production PadmeDAQ: it only adds rows (config_para_name, run_config_para, log_entry).
-- Statements are separated by ';' at the end of a line; no ';' inside statements.

CREATE TABLE IF NOT EXISTS run_type (
    id INT NOT NULL,
    type VARCHAR(255) NOT NULL,
    description TEXT,
    PRIMARY KEY (id),
    UNIQUE KEY uq_run_type_type (type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS run_status (
    id INT NOT NULL,
    status VARCHAR(255) NOT NULL,
    description TEXT,
    PRIMARY KEY (id),
    UNIQUE KEY uq_run_status_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS run (
    number INT NOT NULL,
    name VARCHAR(255),
    user VARCHAR(1024),
    run_type_id INT NOT NULL,
    status INT NOT NULL,
    time_create DATETIME,
    time_init DATETIME,
    time_start DATETIME,
    time_stop DATETIME,
    total_events INT UNSIGNED,
    PRIMARY KEY (number),
    UNIQUE KEY uq_run_name (name),
    KEY fk_run_run_type_idx (run_type_id),
    CONSTRAINT fk_run_run_type FOREIGN KEY (run_type_id) REFERENCES run_type (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS config_para_name (
    id INT NOT NULL AUTO_INCREMENT,
    name VARCHAR(128) NOT NULL,
    description TEXT,
    PRIMARY KEY (id),
    UNIQUE KEY uq_config_para_name_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS run_config_para (
    id INT NOT NULL AUTO_INCREMENT,
    run_number INT NOT NULL,
    config_para_name_id INT NOT NULL,
    value VARCHAR(1024) NOT NULL,
    PRIMARY KEY (id),
    KEY fk_run_config_para_run_idx (run_number),
    KEY fk_run_config_para_name_idx (config_para_name_id),
    CONSTRAINT fk_run_config_para_run FOREIGN KEY (run_number) REFERENCES run (number),
    CONSTRAINT fk_run_config_para_name FOREIGN KEY (config_para_name_id)
        REFERENCES config_para_name (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS log_entry (
    id INT NOT NULL AUTO_INCREMENT,
    run_number INT NOT NULL,
    type VARCHAR(128),
    level INT,
    time DATETIME,
    text TEXT,
    PRIMARY KEY (id),
    KEY fk_log_entry_run_idx (run_number),
    CONSTRAINT fk_log_entry_run FOREIGN KEY (run_number) REFERENCES run (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO run_type (id, type, description) VALUES
    (0, 'TEST', 'Test run'),
    (1, 'DAQ', 'Physics run'),
    (2, 'COSMICS', 'Cosmic ray run'),
    (3, 'CALIBRATION', 'Calibration run'),
    (4, 'RANDOM', 'Random trigger run'),
    (5, 'OTHER', 'Other run type'),
    (6, 'FAKE', 'Fake run'),
    (7, 'TESTBEAM', 'Test beam run');

INSERT IGNORE INTO run_status (id, status, description) VALUES
    (0, 'CREATED', 'Run created'),
    (1, 'INITIALIZED', 'Run initialized'),
    (2, 'RUNNING', 'Run running'),
    (3, 'END_OK', 'Run ended correctly'),
    (4, 'ABORTED', 'Run aborted'),
    (5, 'INIT_ERROR', 'Run initialization failed'),
    (6, 'END_ERROR', 'Run ended with errors'),
    (7, 'UNKNOWN', 'Run status unknown');
