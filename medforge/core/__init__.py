"""The platform's shared vocabulary and rules, one home each: the two exposures and who may use
them, and session host names and IDE links. Imported by every floor; imports no
app."""
