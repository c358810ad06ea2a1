"""The platform's shared vocabulary and rules, one home each: the two exposures and who may use
them, session host names and IDE links, and domain errors. Imported by every floor; imports no
app."""
