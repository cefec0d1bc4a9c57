"""asymloss.report"""
