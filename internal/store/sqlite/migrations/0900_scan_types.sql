-- The node reads every relationship and every sighting of a collection as
-- they arrive (correlation: threats, countries, alerts). In a collection of
-- a million indicators that holds none, a type filter walking objects_order
-- would read the whole collection each time; these partial indexes hold
-- only those rows, so such reads cost what they return. Other rows pay
-- nothing on insert. Queries name the type literally (see pageQuery) so
-- the planner can use them.
CREATE INDEX objects_relationships ON objects (collection, date_added, pos) WHERE type = 'relationship';
CREATE INDEX objects_sightings ON objects (collection, date_added, pos) WHERE type = 'sighting';
