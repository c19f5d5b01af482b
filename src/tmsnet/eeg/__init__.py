"""TMS-EEG: cleaning, TEPs, oscillations, synchrony, propagation and PCIst on MNE objects."""
