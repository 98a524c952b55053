"""What everything shares: results files, seeds, statistics, the paper's numbers, progress bars."""
