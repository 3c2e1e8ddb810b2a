"""Drug-library (DERS) use and limit alerts, the facts behind compliance reports."""
