"""Reports on trained models and runs, read by people: firing and operation counts
(:mod:`.firing_stats`), the circuit's mechanism compared between checkpoints
(:mod:`.mechanism`), tables and plots of run directories (:mod:`.run_summary`,
:mod:`.plots`), path explanations of single predictions (:mod:`.explain`) and the
end-to-end demo (:mod:`.demo`).

Each module is imported on its own (``from grsnn.reports.firing_stats import
circuit_stats``): the reports need matplotlib, networkx or scipy only when they run.
"""
