-- The sandbox's application data: the two tables the restore scenarios count.
CREATE TABLE leads (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE deals (id serial PRIMARY KEY, lead_id int REFERENCES leads(id), amount numeric NOT NULL);
INSERT INTO leads (name) SELECT 'lead ' || i FROM generate_series(1, 40) AS i;
INSERT INTO deals (lead_id, amount) SELECT i, i * 100 FROM generate_series(1, 12) AS i;
